// Drops the custom "name" section from a wasm module in place. worker-build always keeps it
// (wasm-opt --debuginfo); it is about 11% of the gzipped upload. Panic messages keep their
// file:line (those are data, not names); only stack frames lose function names.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const wasm = readFileSync(file);
const leb = (at) => {
  let value = 0, shift = 0, byte;
  do { byte = wasm[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
  return [value, at];
};
const kept = [wasm.subarray(0, 8)];
let removed = 0;
for (let at = 8; at < wasm.length;) {
  const start = at;
  const id = wasm[at];
  const [size, body] = leb(at + 1);
  at = body + size;
  if (id === 0) {
    const [nameLength, nameAt] = leb(body);
    if (wasm.subarray(nameAt, nameAt + nameLength).toString() === "name") { removed += at - start; continue; }
  }
  kept.push(wasm.subarray(start, at));
}
if (removed > 0) writeFileSync(file, Buffer.concat(kept));
console.error(`strip-wasm-names: removed ${removed} bytes of function names from ${file}`);
