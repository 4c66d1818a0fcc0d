#!/usr/bin/env node
// Small JSONL measures for scripts/real-data-sizes.sh (node >= 18, no dependencies).
//
//   node jsonl-changes.mjs compact <file.jsonl>
//     prints: records compact_bytes
//     compact_bytes = the summed bytes of JSON.stringify(JSON.parse(line)) + "\n" per line.
//
//   node jsonl-changes.mjs changes <old.jsonl> <new.jsonl>
//     prints: changed added removed changed_json_bytes changed_fields_json_bytes
//     What an overlay of <new> over <old> has to say: ids whose record differs (compared
//     after parsing, key order ignored), ids only in <new>, ids only in <old>.
//     changed_json_bytes = the compact JSON lines (id included, "\n" included) of the
//     changed and added records of <new>: "the compact JSON of the records it changes".
//     changed_fields_json_bytes = the same, but a changed record counts only its id and its
//     top-level fields that differ (a field <old> has and <new> lacks as null): a JSON patch
//     of the change, a stricter yardstick for an overlay that stores changed fields only.
//
//   node jsonl-changes.mjs same <a.jsonl> <b.jsonl>
//     exits 0 when both hold the same ids with equal records (key order and line order
//     ignored), prints the first difference otherwise.
import { readFileSync } from "node:fs";

function canonical(v) {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v !== null && typeof v === "object") {
    return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

function load(path) {
  const map = new Map();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const record = JSON.parse(line);
    const { id, ...fields } = record;
    map.set(id, { canon: canonical(fields), compact: JSON.stringify(record), record });
  }
  return map;
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "compact") {
  let n = 0;
  let bytes = 0;
  for (const line of readFileSync(a, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    n++;
    bytes += Buffer.byteLength(JSON.stringify(JSON.parse(line))) + 1;
  }
  console.log(`${n} ${bytes}`);
} else if (mode === "changes") {
  const old = load(a);
  const neu = load(b);
  let changed = 0, added = 0, removed = 0, bytes = 0, fieldBytes = 0;
  for (const [id, r] of neu) {
    const o = old.get(id);
    if (o === undefined) {
      added++;
      fieldBytes += Buffer.byteLength(r.compact) + 1;
    } else if (o.canon !== r.canon) {
      changed++;
      const patch = { id };
      for (const [k, v] of Object.entries(r.record)) {
        if (k !== "id" && (!(k in o.record) || canonical(o.record[k]) !== canonical(v))) patch[k] = v;
      }
      for (const k of Object.keys(o.record)) if (!(k in r.record)) patch[k] = null;
      fieldBytes += Buffer.byteLength(JSON.stringify(patch)) + 1;
    } else continue;
    bytes += Buffer.byteLength(r.compact) + 1;
  }
  for (const id of old.keys()) if (!neu.has(id)) removed++;
  console.log(`${changed} ${added} ${removed} ${bytes} ${fieldBytes}`);
} else if (mode === "same") {
  const x = load(a);
  const y = load(b);
  for (const [id, r] of x) {
    const o = y.get(id);
    if (o === undefined) { console.log(`${id}: only in ${a}`); process.exit(1); }
    if (o.canon !== r.canon) { console.log(`${id}: differs\n  ${r.canon}\n  ${o.canon}`); process.exit(1); }
  }
  if (x.size !== y.size) { console.log(`${b} has ${y.size - x.size} more ids`); process.exit(1); }
} else {
  console.error("usage: jsonl-changes.mjs (compact <f> | changes <old> <new> | same <a> <b>)");
  process.exit(2);
}
