// Size and start-up of the built worker: the wasm module raw and gzipped, the whole upload as
// `wrangler deploy --dry-run` writes it, and how long Node's V8 takes to compile and instantiate
// the module. Run after scripts/build.sh (scripts/bench-wasm.sh does both). Writes
// bench/tmp/size-start.json (rows of { metric, value, unit, goal, met, note }) and prints a table.
//
// The dry run uses wrangler.toml minus its [build] section (written to bench/tmp/), so it
// bundles the build/ that is already there instead of rebuilding it.
//
// Start-up: the shipped module uses wasm exception handling with exnref (try_table: the catch
// wrappers worker-build asks wasm-bindgen for), which Node 20's V8 11.3 cannot compile. When
// that happens the timing falls back to `--start-proxy <wasm>`: the same rustc output run
// through wasm-bindgen without those wrappers and wasm-opt -O like worker-build
// (scripts/bench-wasm.sh makes it). The rows say which module was timed.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import os from 'node:os';

const root = resolve(import.meta.dirname, '..');
const tmp = join(root, 'bench/tmp');
const wasmPath = join(root, 'build/index_bg.wasm');
const UPLOAD_GOAL_KB = 300; // gzipped upload, KB = 1000 bytes
const RUNS = 20;
const proxyArg = process.argv.indexOf('--start-proxy');
const proxyPath = proxyArg > 0 ? resolve(process.argv[proxyArg + 1]) : null;

const gzipBytes = (buf) => gzipSync(buf, { level: 9 }).length;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const kb = (bytes) => bytes / 1000;

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

// (1) The module itself.
const wasm = readFileSync(wasmPath);
const wasmRaw = wasm.length;
const wasmGzip = gzipBytes(wasm);
// Custom sections (the function-name section worker-build keeps with wasm-opt --debuginfo,
// producers, ...): bytes a deploy could drop without changing behaviour.
function customSectionSizes(bytes) {
  const leb = (at) => {
    let value = 0;
    let shift = 0;
    let b;
    do {
      b = bytes[at.pos++];
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return value;
  };
  const sizes = {};
  const at = { pos: 8 }; // after magic and version
  while (at.pos < bytes.length) {
    const id = bytes[at.pos++];
    const size = leb(at);
    const end = at.pos + size;
    if (id === 0) {
      const nameLength = leb(at);
      const name = bytes.subarray(at.pos, at.pos + nameLength).toString('utf8');
      sizes[name] = (sizes[name] ?? 0) + size;
    }
    at.pos = end;
  }
  return sizes;
}
const customSizes = customSectionSizes(wasm);
const customBytes = Object.values(customSizes).reduce((a, b) => a + b, 0);

// (2) The upload, as wrangler bundles it, from a copy of wrangler.toml without [build].
const config = readFileSync(join(root, 'wrangler.toml'), 'utf8')
  .replace(/^\[build\][\s\S]*?(?=^\[)/m, '')
  .replace(/^main = "(.*)"$/m, (_, main) => `main = "${relative(tmp, join(root, main))}"`);
mkdirSync(tmp, { recursive: true });
const configPath = join(tmp, 'wrangler.size.toml');
writeFileSync(configPath, config);
const uploadDir = join(tmp, 'upload');
rmSync(uploadDir, { recursive: true, force: true });
const wranglerOut = execFileSync(
  join(root, 'node_modules/.bin/wrangler'),
  ['deploy', '--dry-run', '--config', configPath, '--outdir', uploadDir],
  { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' }, encoding: 'utf8' },
);
// wrangler also writes a source map and a README.md there; neither is uploaded (no
// upload_source_maps in wrangler.toml), so the upload total leaves them out.
const writtenFiles = filesUnder(uploadDir);
const uploadFiles = writtenFiles.filter((p) => !p.endsWith('.map') && !p.endsWith('README.md'));
const sum = (paths, size) => paths.reduce((total, p) => total + size(readFileSync(p)), 0);
const uploadRaw = sum(uploadFiles, (b) => b.length);
const uploadGzip = sum(uploadFiles, gzipBytes);
const writtenRaw = sum(writtenFiles, (b) => b.length);
const writtenGzip = sum(writtenFiles, gzipBytes);
// e.g. "Total Upload: 1291.12 KiB / gzip: 402.34 KiB"
const totalLine = wranglerOut.split('\n').find((l) => l.includes('Total Upload'))?.trim() ?? null;
const totalMatch = totalLine?.match(/Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/);
const wranglerGzipKiB = totalMatch ? Number(totalMatch[2]) : null;

// (3) Compile and instantiate, each the median of RUNS runs.
let timed = { path: wasmPath, bytes: wasm, what: 'build/index_bg.wasm' };
try {
  await WebAssembly.compile(wasm);
} catch (e) {
  if (!proxyPath) throw new Error(`this Node cannot compile the module and no --start-proxy: ${e.message}`);
  const bytes = readFileSync(proxyPath);
  timed = {
    path: proxyPath,
    bytes,
    what: `proxy ${relative(root, proxyPath)} (${kb(bytes.length).toFixed(1)} KB, no exnref catch wrappers), since Node ${process.version} cannot compile the shipped module: ${e.message.slice(0, 80)}`,
  };
}
const compileMs = [];
let module;
for (let i = 0; i < RUNS; i++) {
  const start = performance.now();
  module = await WebAssembly.compile(timed.bytes);
  compileMs.push(performance.now() - start);
}
// Stub imports: the module calls none of them while instantiating (wasm-bindgen starts the
// module from JavaScript after instantiation, not through a wasm start section).
const imports = {};
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  imports[from] ??= {};
  imports[from][name] =
    kind === 'function' ? () => {}
    : kind === 'memory' ? new WebAssembly.Memory({ initial: 17 })
    : kind === 'table' ? new WebAssembly.Table({ initial: 0, element: 'anyfunc' })
    : new WebAssembly.Global({ value: 'i32', mutable: false }, 0);
}
const instantiateMs = [];
for (let i = 0; i < RUNS; i++) {
  const start = performance.now();
  await WebAssembly.instantiate(module, imports);
  instantiateMs.push(performance.now() - start);
}

const row = (metric, value, unit, note = null, goal = null, met = null) =>
  ({ metric, value, unit, goal, met, note });
const round = (x, digits) => Number(x.toFixed(digits));
const goalMet = kb(uploadGzip) < UPLOAD_GOAL_KB;
const rows = [
  row('wasm module (build/index_bg.wasm), raw', round(kb(wasmRaw), 1), 'KB'),
  row('wasm module, gzip -9', round(kb(wasmGzip), 1), 'KB'),
  row('of which custom sections, raw', round(kb(customBytes), 1), 'KB',
    Object.entries(customSizes).map(([n, b]) => `${n} ${kb(b).toFixed(1)} KB`).join(', ') || null),
  row('upload total (wrangler deploy --dry-run --outdir), raw', round(kb(uploadRaw), 1), 'KB',
    `uploaded modules: ${uploadFiles.map((p) => relative(uploadDir, p)).join(', ')}`),
  row('upload total, gzip -9 per file', round(kb(uploadGzip), 1), 'KB',
    totalLine ? `wrangler printed "${totalLine}"` : 'wrangler printed no Total Upload line'),
  row('all files wrangler wrote to --outdir, raw', round(kb(writtenRaw), 1), 'KB',
    `with the source map and README.md; gzip -9: ${kb(writtenGzip).toFixed(1)} KB`),
  row('WebAssembly.compile, median', round(median(compileMs), 2), 'ms',
    `${RUNS} runs, min ${Math.min(...compileMs).toFixed(2)} max ${Math.max(...compileMs).toFixed(2)}; V8 ${process.versions.v8} (lazy compilation: mostly decode and validate), not workerd; module: ${timed.what}`),
  row('WebAssembly.instantiate (stub imports), median', round(median(instantiateMs), 3), 'ms',
    `${RUNS} runs of the compiled module; no start code runs; module: ${timed.what.split(' (')[0]}`),
  row('goal: gzipped upload', round(kb(uploadGzip), 1), 'KB', null,
    `under ${UPLOAD_GOAL_KB} KB`, goalMet),
];

const wranglerVersion = JSON.parse(
  readFileSync(join(root, 'node_modules/wrangler/package.json'), 'utf8'),
).version;
const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
const bindgenVersion = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/)?.[1] ?? null;
const result = {
  title: 'Worker size and module start-up',
  rows,
  machine: { platform: process.platform, arch: process.arch, cores: os.cpus().length, loadavg_1m: Number(os.loadavg()[0].toFixed(2)) },
  versions: {
    node: process.version,
    v8: process.versions.v8,
    wrangler: wranglerVersion,
    'wasm-bindgen': bindgenVersion,
  },
  wrangler_total_upload_gzip_kib: wranglerGzipKiB,
};
writeFileSync(join(tmp, 'size-start.json'), JSON.stringify(result, null, 2) + '\n');

const width = Math.max(...rows.map((r) => r.metric.length));
console.log(`${result.title} (node ${process.version})`);
for (const r of rows) {
  const verdict = r.met === null ? '' : r.met ? `  met (${r.goal})` : `  NOT met (${r.goal})`;
  console.log(`  ${r.metric.padEnd(width)}  ${String(r.value).padStart(9)} ${r.unit}${verdict}`);
}
if (totalLine) console.log(`  wrangler: ${totalLine}`);
console.log(`  -> bench/tmp/size-start.json`);
