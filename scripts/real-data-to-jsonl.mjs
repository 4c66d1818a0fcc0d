#!/usr/bin/env node
// Turn the public real-data packages of issue 10 into JSONL for `fms build` (field "id").
// Used by scripts/fetch-real-data.sh; no dependencies beyond node (>= 18).
//
//   node real-data-to-jsonl.mjs bcd <data.json> <out.jsonl>
//     @mdn/browser-compat-data: one record per feature path. id = the dotted path
//     (`api.AbortController.abort`), the fields = that feature's `__compat` object as it is
//     (description, mdn_url, spec_url, tags, source_file, status {...}, support {browser:
//     statement or [statements]}): nested maps and lists are kept. Each browser of
//     `browsers` is a record too (id `browsers.chrome`: name, type, releases {...}), since its
//     release list is part of the weekly update. `__meta` is left out.
//
//   node real-data-to-jsonl.mjs emojibase <package dir> <out dir>
//     emojibase-data: one file per locale (<out dir>/<locale>.jsonl; `en` is the default the
//     others are overlays over), one record per emoji of <locale>/data.json in its order.
//     id = hexcode, the fields = the locale's entry as it is (label, emoji, text, type,
//     order, group, subgroup, version, tags, emoticon, skins [...] with their own hexcodes)
//     plus `shortcodes`: {preset: shortcode or [shortcodes]} from every
//     <locale>/shortcodes/<preset>.json that has the emoji (presets in file-name order).
import { readFileSync, writeFileSync, readdirSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

function die(msg) {
  console.error(msg);
  process.exit(1);
}

function writeJsonl(path, records) {
  const seen = new Set();
  const lines = [];
  for (const r of records) {
    if (seen.has(r.id)) die(`${path}: duplicate id ${r.id}`);
    seen.add(r.id);
    lines.push(JSON.stringify(r));
  }
  writeFileSync(path, lines.join("\n") + "\n");
  return lines.length;
}

function bcd(input, output) {
  const data = JSON.parse(readFileSync(input, "utf8"));
  const records = [];
  const walk = (node, path) => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return;
    if (node.__compat !== undefined) {
      records.push({ id: path.join("."), ...node.__compat });
    }
    for (const [key, child] of Object.entries(node)) {
      if (key === "__compat") continue;
      walk(child, [...path, key]);
    }
  };
  for (const [top, tree] of Object.entries(data)) {
    if (top === "__meta") continue;
    if (top === "browsers") {
      for (const [name, browser] of Object.entries(tree)) {
        records.push({ id: `browsers.${name}`, ...browser });
      }
      continue;
    }
    walk(tree, [top]);
  }
  const n = writeJsonl(output, records);
  console.error(`${output}: ${n} records (bcd ${data.__meta?.version ?? "?"})`);
}

function emojibase(pkg, outDir) {
  mkdirSync(outDir, { recursive: true });
  const locales = readdirSync(pkg, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(pkg, d.name, "data.json")))
    .map((d) => d.name)
    .sort();
  if (!locales.includes("en")) die(`${pkg}: no en/data.json`);
  for (const locale of locales) {
    const entries = JSON.parse(readFileSync(join(pkg, locale, "data.json"), "utf8"));
    const scDir = join(pkg, locale, "shortcodes");
    const presets = existsSync(scDir)
      ? readdirSync(scDir)
          .filter((f) => f.endsWith(".json"))
          .sort()
          .map((f) => [f.slice(0, -".json".length), JSON.parse(readFileSync(join(scDir, f), "utf8"))])
      : [];
    const records = entries.map((e) => {
      const { hexcode, ...fields } = e;
      const shortcodes = {};
      for (const [preset, table] of presets) {
        if (table[hexcode] !== undefined) shortcodes[preset] = table[hexcode];
      }
      const record = { id: hexcode, ...fields };
      if (Object.keys(shortcodes).length > 0) record.shortcodes = shortcodes;
      return record;
    });
    const n = writeJsonl(join(outDir, `${locale}.jsonl`), records);
    console.error(`${locale}: ${n} records, shortcode presets: ${presets.map((p) => p[0]).join(" ") || "-"}`);
  }
}

const [mode, input, output] = process.argv.slice(2);
if (!mode || !input || !output) die("usage: real-data-to-jsonl.mjs (bcd <data.json> <out.jsonl> | emojibase <package dir> <out dir>)");
if (mode === "bcd") bcd(input, output);
else if (mode === "emojibase") emojibase(input, output);
else die(`unknown mode ${mode}`);
