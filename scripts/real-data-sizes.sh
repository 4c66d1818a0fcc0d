#!/usr/bin/env bash
# Snapshot sizes on the real data of issue 10 (run scripts/fetch-real-data.sh first).
#
#   scripts/real-data-sizes.sh [DIR]     (from the repository root; default: target/real-data)
#   FMS=path/to/fms scripts/real-data-sizes.sh    (default: target/release/fms)
#
# Copies the fms binary to DIR/out/fms (so a rebuild during the run changes nothing), builds
#   - emojibase: every locale as a full snapshot, and every locale but `en` as an overlay over
#     en.fms (`fms build --base en.fms`, depth 1);
#   - browser-compat-data: every version as a full snapshot; the chain of update overlays
#     (first version full, each next version over the whole chain before it) until fms
#     refuses a depth; and, as the fallback, each version as an overlay over its immediate
#     predecessor's full snapshot (depth 1);
# and prints Markdown tables (also written to DIR/out/sizes.md). Ratios are same-run.
# `fms inspect --json` of one full snapshot and one overlay of each data set goes to
# DIR/out/inspect-*.json; the section split is printed.
# gzip -9 and zstd -19 of the JSONL are printed for context when the tools exist.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-target/real-data}"
fms_src="${FMS:-target/release/fms}"
[[ -d "$dir/bcd" && -d "$dir/emojibase" ]] || { echo "no data in $dir: run scripts/fetch-real-data.sh first" >&2; exit 1; }
[[ -x "$fms_src" ]] || { echo "no fms binary at $fms_src: cargo build --release --bin fms" >&2; exit 1; }

out="$dir/out"
rm -rf "$out"
mkdir -p "$out/emojibase" "$out/bcd-full" "$out/bcd-chain" "$out/bcd-step"
cp "$fms_src" "$out/fms"
fms="$out/fms"
js="$here/jsonl-changes.mjs"

have_gzip=0; command -v gzip >/dev/null && have_gzip=1
have_zstd=0; command -v zstd >/dev/null && have_zstd=1

size() { stat -c %s "$1"; }
gz() { if ((have_gzip)); then gzip -9 -c "$1" | wc -c; else echo "-"; fi; }
zs() { if ((have_zstd)); then zstd -19 -q -c "$1" | wc -c; else echo "-"; fi; }
# ratio a b [digits]: a / b
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (b == 0 || a == "-" || b == "-") print "-"; else printf "%.*f\n", d, a / b }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }

report="$out/sizes.md"
: >"$report"
say() { printf '%s\n' "$*" | tee -a "$report"; }

# sections <inspect.json>: "pool 41.9% (292034 B), data ..." for every section
sections() {
  node -e '
    const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(d.sections.map((s) => `${s.name} ${s.percent.toFixed(1)}% (${s.bytes} B)`).join(", "));
  ' "$1"
}

say "fms: $("$fms" --version) ($fms_src)"
say "data: $(tr '\n' ';' <"$dir/VERSIONS" 2>/dev/null || echo '?')"
say ""

########################################################################################
# emojibase
########################################################################################
edir="$dir/emojibase"
mapfile -t locales < <(cd "$edir" && ls *.jsonl | sed 's/\.jsonl$//' | sort)
others=()
for l in "${locales[@]}"; do [[ "$l" == en ]] || others+=("$l"); done

"$fms" build -q -o "$out/emojibase/en.fms" "$edir/en.jsonl" >/dev/null

say "### emojibase-data: full snapshots (one per locale)"
say ""
say "| locale | records | JSONL B | compact JSONL B | snapshot B | snapshot / compact | gzip -9 B | zstd -19 B |"
say "|---|---:|---:|---:|---:|---:|---:|---:|"
e_jsonl=0; e_compact=0; e_full=0; e_gz=0; e_zs=0
declare -A e_compact_of
for l in "${locales[@]}"; do
  f="$edir/$l.jsonl"
  read -r n c < <(node "$js" compact "$f")
  e_compact_of[$l]=$c
  [[ "$l" == en ]] || "$fms" build -q -o "$out/emojibase/$l.full.fms" "$f" >/dev/null
  snap="$out/emojibase/$l.full.fms"; [[ "$l" == en ]] && snap="$out/emojibase/en.fms"
  s=$(size "$snap"); j=$(size "$f"); g=$(gz "$f"); z=$(zs "$f")
  say "| $l | $n | $j | $c | $s | $(ratio "$s" "$c") | $g | $z |"
  e_jsonl=$((e_jsonl + j)); e_compact=$((e_compact + c)); e_full=$((e_full + s))
  [[ "$g" == - ]] || e_gz=$((e_gz + g)); [[ "$z" == - ]] || e_zs=$((e_zs + z))
done
say "| **all ${#locales[@]}** | | $e_jsonl | $e_compact | $e_full | $(ratio "$e_full" "$e_compact") | $e_gz | $e_zs |"
say ""

say "### emojibase-data: each locale as an overlay over \`en\` (depth 1)"
say ""
say "Changed = ids whose record differs from en's (after parsing), added = ids en lacks; changed JSON = the compact JSON lines of the changed and added records; changed-fields JSON = the same with a changed record cut down to its id and its differing top-level fields."
say ""
say "| locale | changed | added | removed | changed JSON B | changed-fields JSON B | overlay B | overlay / changed JSON | overlay / changed-fields JSON | B per changed id | overlay / locale full snapshot |"
say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
e_over=0; e_changed_json=0; e_changed=0; e_fields_json=0
for l in "${others[@]}"; do
  f="$edir/$l.jsonl"
  "$fms" build -q --base "$out/emojibase/en.fms" -o "$out/emojibase/$l.fms" "$f" >/dev/null
  read -r ch ad rm cj fj < <(node "$js" changes "$edir/en.jsonl" "$f")
  o=$(size "$out/emojibase/$l.fms")
  say "| $l | $ch | $ad | $rm | $cj | $fj | $o | $(ratio "$o" "$cj") | $(ratio "$o" "$fj") | $(ratio "$o" $((ch + ad)) 1) | $(ratio "$o" "$(size "$out/emojibase/$l.full.fms")") |"
  e_over=$((e_over + o)); e_changed_json=$((e_changed_json + cj)); e_changed=$((e_changed + ch + ad)); e_fields_json=$((e_fields_json + fj))
done
en_full=$(size "$out/emojibase/en.fms")
say "| **all ${#others[@]}** | $e_changed | | | $e_changed_json | $e_fields_json | $e_over | $(ratio "$e_over" "$e_changed_json") | $(ratio "$e_over" "$e_fields_json") | $(ratio "$e_over" "$e_changed" 1) | |"
say ""
say "Totals (28 locales):"
say ""
say "| measure | bytes | / the 28 compact JSONL |"
say "|---|---:|---:|"
say "| the 28 JSONL (compact) | $e_compact | 1.000 |"
say "| en full + ${#others[@]} overlays (fms) | $((en_full + e_over)) | $(ratio $((en_full + e_over)) "$e_compact") |"
say "| 28 full snapshots (fms) | $e_full | $(ratio "$e_full" "$e_compact") |"
((have_gzip)) && say "| gzip -9 of each JSONL, summed (no random access) | $e_gz | $(ratio "$e_gz" "$e_compact") |"
((have_zstd)) && say "| zstd -19 of each JSONL, summed (no random access) | $e_zs | $(ratio "$e_zs" "$e_compact") |"
say ""

# Sanity: an overlay gives its locale back.
"$fms" export --base "$out/emojibase/en.fms" -o "$out/emojibase/de.export.jsonl" "$out/emojibase/de.fms"
node "$js" same "$edir/de.jsonl" "$out/emojibase/de.export.jsonl" || { echo "de overlay does not export to de.jsonl" >&2; exit 1; }

########################################################################################
# browser-compat-data
########################################################################################
bdir="$dir/bcd"
mapfile -t versions < <(cd "$bdir" && ls *.jsonl | sed 's/\.jsonl$//' | sort -V)

say "### @mdn/browser-compat-data: full snapshots (one per version)"
say ""
say "| version | records | JSONL B | compact JSONL B | snapshot B | snapshot / compact | gzip -9 B | zstd -19 B |"
say "|---|---:|---:|---:|---:|---:|---:|---:|"
declare -A b_compact_of b_full_of
for v in "${versions[@]}"; do
  f="$bdir/$v.jsonl"
  read -r n c < <(node "$js" compact "$f")
  b_compact_of[$v]=$c
  "$fms" build -q -o "$out/bcd-full/$v.fms" "$f" >/dev/null
  s=$(size "$out/bcd-full/$v.fms"); b_full_of[$v]=$s
  say "| $v | $n | $(size "$f") | $c | $s | $(ratio "$s" "$c") | $(gz "$f") | $(zs "$f") |"
done
say ""

# The changes between consecutive versions (shared by both overlay tables).
declare -A b_ch b_ad b_rm b_cj b_fj
for ((i = 1; i < ${#versions[@]}; i++)); do
  p=${versions[i - 1]}; v=${versions[i]}
  read -r b_ch[$v] b_ad[$v] b_rm[$v] b_cj[$v] b_fj[$v] < <(node "$js" changes "$bdir/$p.jsonl" "$bdir/$v.jsonl")
done

say "### @mdn/browser-compat-data: the chain of update overlays"
say ""
say "${versions[0]} full, then each version over the whole chain before it (\`--base\` once per file of the chain)."
say ""
say "| version | depth | overlay B | changed | added | removed | changed JSON B | changed-fields JSON B | overlay / changed JSON | overlay / changed-fields JSON | B per changed id |"
say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
cp "$out/bcd-full/${versions[0]}.fms" "$out/bcd-chain/${versions[0]}.fms"
chain=(--base "$out/bcd-chain/${versions[0]}.fms")
chain_total=$(size "$out/bcd-chain/${versions[0]}.fms")
chain_error=""
for ((i = 1; i < ${#versions[@]}; i++)); do
  v=${versions[i]}
  rc=0
  "$fms" build -q "${chain[@]}" -o "$out/bcd-chain/$v.fms" "$bdir/$v.jsonl" >"$out/bcd-chain/$v.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    chain_error="$v at depth $i: \`fms build\` exits $rc, stderr: $(tr '\n' ' ' <"$out/bcd-chain/$v.log")"
    [[ -e "$out/bcd-chain/$v.fms" ]] && chain_error="$chain_error (and a file was written!)"
    say "| $v | $i | **refused** | ${b_ch[$v]} | ${b_ad[$v]} | ${b_rm[$v]} | ${b_cj[$v]} | ${b_fj[$v]} | | | |"
    break
  fi
  o=$(size "$out/bcd-chain/$v.fms")
  chain_total=$((chain_total + o))
  say "| $v | $i | $o | ${b_ch[$v]} | ${b_ad[$v]} | ${b_rm[$v]} | ${b_cj[$v]} | ${b_fj[$v]} | $(ratio "$o" "${b_cj[$v]}") | $(ratio "$o" "${b_fj[$v]}") | $(ratio "$o" $((b_ch[$v] + b_ad[$v])) 1) |"
  chain+=(--base "$out/bcd-chain/$v.fms")
  last_chain=$v
done
say ""
if [[ -n "$chain_error" ]]; then
  say "Chain stopped: $chain_error"
else
  say "Chain: all ${#versions[@]} versions built."
fi
say ""
# Sanity: the chain's last overlay gives its version back.
[[ -n "${last_chain:-}" ]] || { echo "no overlay of the chain was built" >&2; exit 1; }
"$fms" export "${chain[@]:0:${#chain[@]}-2}" -o "$out/bcd-chain/$last_chain.export.jsonl" "$out/bcd-chain/$last_chain.fms"
node "$js" same "$bdir/$last_chain.jsonl" "$out/bcd-chain/$last_chain.export.jsonl" || { echo "chain overlay $last_chain does not export to its JSONL" >&2; exit 1; }
rm "$out/bcd-chain/$last_chain.export.jsonl"

say "### @mdn/browser-compat-data: each version over its predecessor's full snapshot (depth 1)"
say ""
say "| version | over | overlay B | changed | added | removed | changed JSON B | changed-fields JSON B | overlay / changed JSON | overlay / changed-fields JSON | B per changed id | overlay / full snapshot |"
say "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
step_total=${b_full_of[${versions[0]}]}; step_cj=0; step_fj=0; step_over=0; step_changed=0
for ((i = 1; i < ${#versions[@]}; i++)); do
  p=${versions[i - 1]}; v=${versions[i]}
  "$fms" build -q --base "$out/bcd-full/$p.fms" -o "$out/bcd-step/$v.fms" "$bdir/$v.jsonl" >/dev/null
  o=$(size "$out/bcd-step/$v.fms")
  say "| $v | $p | $o | ${b_ch[$v]} | ${b_ad[$v]} | ${b_rm[$v]} | ${b_cj[$v]} | ${b_fj[$v]} | $(ratio "$o" "${b_cj[$v]}") | $(ratio "$o" "${b_fj[$v]}") | $(ratio "$o" $((b_ch[$v] + b_ad[$v])) 1) | $(ratio "$o" "${b_full_of[$v]}") |"
  step_total=$((step_total + o)); step_over=$((step_over + o)); step_cj=$((step_cj + b_cj[$v])); step_fj=$((step_fj + b_fj[$v]))
  step_changed=$((step_changed + b_ch[$v] + b_ad[$v]))
done
say "| **all $((${#versions[@]} - 1))** | | $step_over | $step_changed | | | $step_cj | $step_fj | $(ratio "$step_over" "$step_cj") | $(ratio "$step_over" "$step_fj") | $(ratio "$step_over" "$step_changed" 1) | |"
say ""
b_compact_all=0; b_full_all=0
for v in "${versions[@]}"; do
  b_compact_all=$((b_compact_all + b_compact_of[$v])); b_full_all=$((b_full_all + b_full_of[$v]))
done
say "Totals (${#versions[@]} versions):"
say ""
say "| measure | bytes | / the ${#versions[@]} compact JSONL |"
say "|---|---:|---:|"
say "| the ${#versions[@]} JSONL (compact) | $b_compact_all | 1.000 |"
say "| ${#versions[@]} full snapshots (fms) | $b_full_all | $(ratio "$b_full_all" "$b_compact_all") |"
say "| ${versions[0]} full + $((${#versions[@]} - 1)) depth-1 overlays (each over the previous *full*, so these files alone do not hold the versions) | $step_total | $(ratio "$step_total" "$b_compact_all") |"
say ""
chain_compact=0; chain_n=0
for v in "${versions[@]}"; do
  [[ -e "$out/bcd-chain/$v.fms" ]] || break
  chain_compact=$((chain_compact + b_compact_of[$v])); chain_n=$((chain_n + 1))
done
say "The chain that was built (${versions[0]} full + $((chain_n - 1)) stacked overlays, self-contained): $chain_total bytes for $chain_n versions whose compact JSONL is $chain_compact bytes: $(ratio "$chain_total" "$chain_compact")."
say ""

########################################################################################
# where the bytes go
########################################################################################
say "### Where the bytes go (\`fms inspect --json\`, sections as % of the file)"
say ""
mid=${others[0]}; for l in "${others[@]}"; do [[ "$l" == de ]] && mid=de; done
lastv=${versions[-1]}; prevv=${versions[-2]}
"$fms" inspect --json "$out/emojibase/en.fms" >"$out/inspect-emojibase-en.json"
"$fms" inspect --json --base "$out/emojibase/en.fms" "$out/emojibase/$mid.fms" >"$out/inspect-emojibase-$mid-overlay.json"
"$fms" inspect --json "$out/bcd-full/$lastv.fms" >"$out/inspect-bcd-$lastv.json"
"$fms" inspect --json --base "$out/bcd-full/$prevv.fms" "$out/bcd-step/$lastv.fms" >"$out/inspect-bcd-$lastv-over-$prevv.json"
say "- emojibase en (full): $(sections "$out/inspect-emojibase-en.json")"
say "- emojibase $mid (overlay over en): $(sections "$out/inspect-emojibase-$mid-overlay.json")"
say "- bcd $lastv (full): $(sections "$out/inspect-bcd-$lastv.json")"
say "- bcd $lastv (overlay over $prevv full): $(sections "$out/inspect-bcd-$lastv-over-$prevv.json")"
say ""
echo "written: $report, snapshots and inspect JSON in $out" >&2
