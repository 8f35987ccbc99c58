// Merges the parts the benchmarks wrote to bench/tmp/ into bench/results.json, appends one line
// per run to bench/history.jsonl (so regressions show in the repository's history), rewrites
// BENCHMARKS.md, and prints the table. Figures are reported, never judged: goals are shown with
// whether they were met, and nothing fails on them.
import { execSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const tmp = path.join(root, "bench/tmp");
// The order parts appear in; any other part found is appended.
const ORDER = ["callback-ingest", "fanout", "waiters", "wasm-protocol", "size-start"];

const run = (cmd) => {
  try { return execSync(cmd, { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim(); }
  catch { return null; }
};

// --rewrite: rebuild BENCHMARKS.md from bench/results.json (after editing bench/NOTES.md)
// without recording a run.
const rewrite = process.argv.includes("--rewrite");
let results;
if (rewrite) {
  results = JSON.parse(readFileSync(path.join(root, "bench/results.json"), "utf8"));
} else {
  const parts = {};
  if (existsSync(tmp)) {
    for (const file of readdirSync(tmp).filter((f) => f.endsWith(".json"))) {
      const data = JSON.parse(readFileSync(path.join(tmp, file), "utf8"));
      if (Array.isArray(data.rows)) parts[file.replace(/\.json$/, "")] = data;
    }
  }
  // The wasm part repeats the native figures next to its own.
  if (parts["wasm-protocol"]) delete parts["protocol-native"];
  const found = [...ORDER.filter((n) => parts[n]), ...Object.keys(parts).filter((n) => !ORDER.includes(n))];
  if (found.length === 0) {
    console.error("no benchmark results in bench/tmp/: run scripts/bench.sh");
    process.exit(1);
  }
  results = {
    date: new Date().toISOString(),
    commit: run("git rev-parse --short HEAD"),
    command: "scripts/bench.sh",
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      rustc: run("rustc --version"),
      wrangler: JSON.parse(readFileSync(path.join(root, "node_modules/wrangler/package.json"), "utf8")).version,
      workerd: JSON.parse(readFileSync(path.join(root, "node_modules/workerd/package.json"), "utf8")).version,
    },
    parts: Object.fromEntries(found.map((n) => [n, parts[n]])),
  };
  writeFileSync(path.join(root, "bench/results.json"), JSON.stringify(results, null, 2) + "\n");
  const compact = { date: results.date, commit: results.commit, cores: results.machine.cores,
    rows: found.flatMap((n) => parts[n].rows.map((r) => [n, r.metric, r.value, r.unit])) };
  appendFileSync(path.join(root, "bench/history.jsonl"), JSON.stringify(compact) + "\n");
}
const { machine } = results;
const parts = results.parts;
const names = Object.keys(parts);

const fmt = (v) => typeof v !== "number" ? String(v)
  : !Number.isFinite(v) ? "n/a"
  : Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en-US")
  : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
const verdict = (r) => r.met === true ? "met" : r.met === false ? "NOT met" : "";

// The terminal table.
const lines = [];
for (const n of names) {
  lines.push("", `== ${parts[n].title}`);
  for (const r of parts[n].rows) {
    const goal = r.goal ? `goal ${r.goal} ${verdict(r)}` : "";
    lines.push(`  ${r.metric.padEnd(58)} ${(fmt(r.value) + " " + r.unit).padEnd(24)} ${goal}`);
  }
}
console.log(lines.join("\n"));

// BENCHMARKS.md: the latest figures, the command and the machine.
const md = [
  "# Benchmarks",
  "",
  "Latest figures from `scripts/bench.sh` (raw data in `bench/results.json`; one line per run in",
  "`bench/history.jsonl`). Benchmarks are never part of the tests' pass or fail; goals are shown",
  "with whether this run met them. The machines are shared and noisy: compare ratios and figures",
  "measured in the same run.",
  "",
  `Run ${results.date} at commit \`${results.commit}\` on ${machine.cores} cores (${machine.cpu}),`,
  `${machine.memoryGiB} GiB, ${machine.os}; ${machine.rustc}, Node ${machine.node},`,
  `wrangler ${machine.wrangler}, workerd ${machine.workerd}.`,
];
for (const n of names) {
  md.push("", `## ${parts[n].title}`, "", "| metric | value | goal | |", "|---|---|---|---|");
  for (const r of parts[n].rows) {
    const note = r.note ? ` (${r.note})` : "";
    md.push(`| ${r.metric} | ${fmt(r.value)} ${r.unit}${note} | ${r.goal ?? ""} | ${verdict(r)} |`);
  }
}
const notes = path.join(root, "bench/NOTES.md");
if (existsSync(notes)) md.push("", readFileSync(notes, "utf8").trim());
writeFileSync(path.join(root, "BENCHMARKS.md"), md.join("\n") + "\n");
console.log(rewrite ? "\nwrote BENCHMARKS.md" : "\nwrote bench/results.json, bench/history.jsonl, BENCHMARKS.md");
