// The protocol micro-benchmarks (benches/shared/protocol_ops.rs) run as wasm under Node, next to
// the native figures of `cargo bench --bench protocol` (bench/tmp/protocol-native.json).
// Same operations, inputs, iteration count, warm-up and median of rounds as the native loop;
// each timed round is one call into wasm that runs the operation ITERATIONS times, timed with
// performance.now(). Writes bench/tmp/wasm-protocol.json and prints a table.
//
// Usage: node scripts/bench-wasm-protocol.mjs <wasm-bindgen --target nodejs output .js>

import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import os from 'node:os';

const root = resolve(import.meta.dirname, '..');
const tmp = join(root, 'bench/tmp');
const gluePath = resolve(process.argv[2] ?? join(tmp, 'wasm-protocol/wasm_protocol_bench.js'));
const VERIFY_GOAL_US = 5;

const bench = createRequire(import.meta.url)(gluePath);
const iterations = bench.iterations();
const rounds = bench.rounds();
bench.prepare();

const native = JSON.parse(readFileSync(join(tmp, 'protocol-native.json'), 'utf8'));
const nativeUs = new Map(native.rows.map((r) => [r.metric, r.value]));

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const row = (metric, value, unit, note = null, goal = null, met = null) =>
  ({ metric, value, unit, goal, met, note });
const round = (x, digits) => Number(x.toFixed(digits));

const rows = [];
const table = [];
for (let op = 0; op < bench.op_count(); op++) {
  const label = bench.op_label(op);
  bench.run(op, iterations / 10); // warm-up, as natively (also lets V8 tier up to TurboFan)
  const perOpUs = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    bench.run(op, iterations);
    perOpUs.push(((performance.now() - start) * 1000) / iterations);
  }
  const wasmUs = median(perOpUs);
  const nativeOpUs = nativeUs.get(label);
  if (nativeOpUs === undefined) throw new Error(`no native figure for "${label}": rerun cargo bench --bench protocol`);
  const ratio = wasmUs / nativeOpUs;
  rows.push(row(`${label}: native`, round(nativeOpUs, 3), 'µs/op'));
  rows.push(row(`${label}: wasm`, round(wasmUs, 3), 'µs/op',
    `spread of rounds ${Math.min(...perOpUs).toFixed(2)}–${Math.max(...perOpUs).toFixed(2)} µs`));
  rows.push(row(`${label}: wasm / native`, round(ratio, 2), '×'));
  table.push([label, nativeOpUs, wasmUs, ratio]);
}
const verifyGoal = native.rows.find((r) => r.met !== null && r.metric.startsWith('goal:'));
if (verifyGoal) rows.push(verifyGoal);

const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
const result = {
  title: 'Protocol micro-benchmarks, native vs wasm (Node)',
  rows,
  machine: { ...native.machine, cpu: os.cpus()[0]?.model ?? null, loadavg_1m: round(os.loadavg()[0], 2) },
  versions: {
    ...native.versions,
    node: process.version,
    v8: process.versions.v8,
    'wasm-bindgen': lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/)?.[1] ?? null,
    'wasm profile': 'release profile of the worker (opt-level "s", lto, codegen-units 1), wasm-bindgen --target nodejs, wasm-opt -O as worker-build runs it',
  },
  method: `median of ${rounds} rounds of ${iterations} operations after ${iterations / 10} warm-up, both sides; native: ${native.method ?? 'cargo bench --bench protocol'}`,
};
writeFileSync(join(tmp, 'wasm-protocol.json'), JSON.stringify(result, null, 2) + '\n');

const width = Math.max(...table.map(([l]) => l.length));
console.log(`${result.title} (node ${process.version}; µs/op)`);
console.log(`  ${'operation'.padEnd(width)}  ${'native'.padStart(8)}  ${'wasm'.padStart(8)}  ratio`);
for (const [label, n, w, ratio] of table) {
  console.log(`  ${label.padEnd(width)}  ${n.toFixed(2).padStart(8)}  ${w.toFixed(2).padStart(8)}  ${ratio.toFixed(1)}×`);
}
if (verifyGoal) {
  console.log(`  ${verifyGoal.metric}: ${verifyGoal.value.toFixed(2)} µs, goal ${verifyGoal.goal}: ${verifyGoal.met ? 'met' : 'NOT met'}`);
}
console.log('  -> bench/tmp/wasm-protocol.json');
