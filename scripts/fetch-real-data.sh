#!/usr/bin/env bash
# Fetch the public real-data sets of issue 10 with npm and turn them into JSONL.
#
#   scripts/fetch-real-data.sh [DIR]        (from the repository root; default: target/real-data,
#                                           ignored by git with target/)
#
# Needs: npm and node (>= 18). Run by hand; no test needs the network or this data.
#
# Writes:
#   DIR/npm/*.tgz                      the exact package tarballs (npm pack)
#   DIR/bcd/<version>.jsonl            @mdn/browser-compat-data: one record per feature path
#   DIR/emojibase/<locale>.jsonl       emojibase-data: one record per emoji, one file per locale
#   DIR/VERSIONS                       the package versions used
#
# The versions are pinned so that the measurements in BENCHMARKS.md can be repeated.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-target/real-data}"

# @mdn/browser-compat-data: 12 consecutive weekly releases (2026-08-06 .. 2026-10-22).
# 8.0.14 is left out: a maintenance release of the 8.0 line published the same day as
# 8.1.0, not a step of the weekly sequence.
BCD_VERSIONS=(
  8.0.10 8.0.11 8.0.12 8.0.13
  8.1.0 8.1.1 8.1.2 8.1.3 8.1.4 8.1.5 8.1.6 8.1.7
)
# emojibase-data: one version, all 28 locales.
EMOJIBASE_VERSION=17.0.0

mkdir -p "$dir/npm" "$dir/bcd" "$dir/emojibase"
dir="$(cd "$dir" && pwd)"

pack() { # pack <spec> <tarball name>: fetch once, keep the tarball
  local spec="$1" file="$2"
  if [[ ! -s "$dir/npm/$file" ]]; then
    echo "npm pack $spec" >&2
    (cd "$dir/npm" && npm pack --silent "$spec" >/dev/null)
  fi
  [[ -s "$dir/npm/$file" ]] || { echo "npm pack $spec did not give $file" >&2; exit 1; }
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for v in "${BCD_VERSIONS[@]}"; do
  pack "@mdn/browser-compat-data@$v" "mdn-browser-compat-data-$v.tgz"
  mkdir -p "$tmp/bcd-$v"
  tar -xzf "$dir/npm/mdn-browser-compat-data-$v.tgz" -C "$tmp/bcd-$v" package/data.json
  node "$here/real-data-to-jsonl.mjs" bcd "$tmp/bcd-$v/package/data.json" "$dir/bcd/$v.jsonl"
  rm -rf "$tmp/bcd-$v"
done

pack "emojibase-data@$EMOJIBASE_VERSION" "emojibase-data-$EMOJIBASE_VERSION.tgz"
mkdir -p "$tmp/emojibase"
tar -xzf "$dir/npm/emojibase-data-$EMOJIBASE_VERSION.tgz" -C "$tmp/emojibase"
node "$here/real-data-to-jsonl.mjs" emojibase "$tmp/emojibase/package" "$dir/emojibase"

{
  echo "@mdn/browser-compat-data ${BCD_VERSIONS[*]}"
  echo "emojibase-data $EMOJIBASE_VERSION"
} >"$dir/VERSIONS"

echo "bcd:       $(ls "$dir/bcd" | wc -l) versions in $dir/bcd" >&2
echo "emojibase: $(ls "$dir/emojibase" | wc -l) locales in $dir/emojibase" >&2
