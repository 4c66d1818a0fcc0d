"""fms from Python against the peers a Python frontend has: a dict of dicts loaded from
JSON or from pickle, and LMDB + json.loads (if the `lmdb` package is installed).

    python bench/bench.py prepare DIR [--trees 40]   # fms gen + fms build (needs the fms CLI)
    python bench/bench.py run DIR [--trees 1,10,40] [--dict-trees 1,10]

`run` measures each figure in a fresh child process (so RSS is that configuration's own):
time to load a tree, ns per `tree[id][field]` read, and the process memory (tracemalloc's
Python heap, and RSS from /proc/self/status) of holding N scale-1 trees. fms trees are
en plus locale overlays (70% translated, as the demo); the dict peers hold each locale's
full tree. Prints markdown tables (BENCHMARKS.md "Python").
"""

import argparse
import gc
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import time
import tracemalloc

READS = 200_000
FIELDS = ("title", "slug", "kind", "description")


def locales(n):
    return ["en"] + [f"l{i:02d}" for i in range(1, n)]


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fms_cli():
    exe = shutil.which("fms") or os.path.join(
        os.path.dirname(__file__), "..", "..", "target", "release", "fms"
    )
    if not os.path.exists(exe):
        sys.exit("the fms CLI is needed: cargo build --release (at the repository root)")
    return exe


def prepare(d, trees):
    exe = fms_cli()
    names = locales(trees)
    os.makedirs(d, exist_ok=True)
    jl = os.path.join(d, "jsonl")
    subprocess.run([exe, "gen", "--scale", "1", "--locales", ",".join(names), "-o", jl], check=True)
    en = os.path.join(d, "en.fms")
    subprocess.run([exe, "build", "-q", "-o", en, os.path.join(jl, "en.jsonl")], check=True)
    for loc in names[1:]:
        out = os.path.join(d, f"{loc}.fms")
        subprocess.run(
            [exe, "build", "-q", "--base", en, "-o", out, os.path.join(jl, f"{loc}.jsonl")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    manifest = {"default_locale": "en", "locales": {l: f"{l}.fms" for l in names}, "bases": []}
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    # Dict peers: {id: record} as JSON and pickle, per locale (written lazily by `run`).
    print(f"prepared {trees} trees in {d}")


def dict_of(d, loc):
    """The locale's tree as a dict of dicts, from its JSONL (and cached as JSON/pickle)."""
    js = os.path.join(d, f"{loc}.json")
    pk = os.path.join(d, f"{loc}.pickle")
    if not os.path.exists(js):
        tree = {}
        with open(os.path.join(d, "jsonl", f"{loc}.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                tree[r.pop("id")] = r
        with open(js, "w") as f:
            json.dump(tree, f, separators=(",", ":"))
        with open(pk, "wb") as f:
            pickle.dump(tree, f, protocol=pickle.HIGHEST_PROTOCOL)
    return js, pk


def lmdb_of(d, loc):
    import lmdb

    path = os.path.join(d, f"{loc}.lmdb")
    if not os.path.exists(path):
        env = lmdb.open(path, map_size=1 << 32, subdir=True)
        with env.begin(write=True) as txn, open(os.path.join(d, "jsonl", f"{loc}.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                txn.put(r.pop("id").encode(), json.dumps(r, separators=(",", ":")).encode())
        env.close()
    return path


def sample(ids, n):
    rnd = random.Random(7)
    return [(rnd.choice(ids), FIELDS[i % len(FIELDS)]) for i in range(n)]


def time_reads(tree, pairs):
    """ns per `tree[id][field]`, best of 5 passes over `pairs` (loop overhead included,
    the same for every peer)."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter_ns()
        for id, field in pairs:
            tree[id][field]
        best = min(best, (time.perf_counter_ns() - t) / len(pairs))
    return best


def time_lmdb_reads(txn, pairs):
    best = float("inf")
    loads = json.loads
    for _ in range(5):
        t = time.perf_counter_ns()
        for id, field in pairs:
            loads(txn.get(id.encode()))[field]
        best = min(best, (time.perf_counter_ns() - t) / len(pairs))
    return best


def child(kind, d, n, trace):
    """One configuration, in this (fresh) process; prints one JSON line. With `trace`,
    only what tracemalloc sees of holding the trees (it slows allocation and inflates
    RSS, so times and RSS come from a run without it)."""
    names = locales(n)
    if trace:
        tracemalloc.start()
    base_rss = rss_mb()
    out = {"kind": kind, "trees": n}
    held = []
    t0 = time.perf_counter()
    if kind == "fms":
        import fms

        # A first open outside the timing: the import's and the classes' one-time setup.
        fms.Snapshot.open(os.path.join(d, "en.fms"))
        opens = []
        en = None
        for loc in names:
            s = time.perf_counter()
            snap = fms.Snapshot.open(os.path.join(d, f"{loc}.fms"), base=en)
            opens.append(time.perf_counter() - s)
            en = en or snap
            held.append(snap)
        # Opened again (new objects over the same files, now in the page cache): what a
        # server that has just written or fetched its trees sees. The first pass depends on
        # whether the page cache still held the files' first pages.
        warm = []
        for loc in names:
            s = time.perf_counter()
            fms.Snapshot.open(os.path.join(d, f"{loc}.fms"), base=held[0] if loc != "en" else None)
            warm.append(time.perf_counter() - s)
        out["load_s"] = max(warm)
        out["open_us_max"] = max(warm) * 1e6
        out["open_us_median"] = sorted(warm)[len(warm) // 2] * 1e6
        out["first_open_us_max"] = max(opens) * 1e6
        out["first_open_us_median"] = sorted(opens)[len(opens) // 2] * 1e6
    elif kind in ("json", "pickle"):
        for loc in names:
            js, pk = dict_of(d, loc)
            s = time.perf_counter()
            if kind == "json":
                with open(js) as f:
                    held.append(json.load(f))
            else:
                with open(pk, "rb") as f:
                    held.append(pickle.load(f))
            out["load_s"] = time.perf_counter() - s
    elif kind == "lmdb":
        import lmdb

        for loc in names:
            path = lmdb_of(d, loc)
            s = time.perf_counter()
            held.append(lmdb.open(path, readonly=True, lock=False, subdir=True))
            out["load_s"] = time.perf_counter() - s
    out["total_load_s"] = time.perf_counter() - t0
    gc.collect()
    if trace:
        out["heap_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
        print(json.dumps(out))
        return
    out["rss_mb"] = rss_mb()
    out["rss_base_mb"] = base_rss

    # Reads on the last tree held.
    last = held[-1]
    if kind == "fms":
        ids = list(last)
        pairs = sample(ids, READS)
        out["ns_per_read"] = time_reads(last, pairs)
        # The same reads on the full snapshot (en), for trees held together with overlays.
        out["ns_per_read_en"] = time_reads(held[0], sample(list(held[0]), READS))
        # Then touch every record of every tree (all their pages), the worst case for RSS.
        for snap in held:
            for id in snap:
                snap[id].to_json()
        out["rss_touched_mb"] = rss_mb()
    elif kind in ("json", "pickle"):
        pairs = sample(list(last), READS)
        out["ns_per_read"] = time_reads(last, pairs)
    elif kind == "lmdb":
        with last.begin() as txn:
            ids = [k.decode() for k in txn.cursor().iternext(values=False)]
            pairs = sample(ids, READS // 10)
            out["ns_per_read"] = time_lmdb_reads(txn, pairs)
    print(json.dumps(out))


def run(d, trees, dict_trees, kinds):
    try:
        import lmdb  # noqa: F401
    except ImportError:
        if "lmdb" in kinds:
            print("(lmdb not installed: pip install lmdb to include it)")
            kinds = [k for k in kinds if k != "lmdb"]
    # The peers' files (dicts as JSON and pickle, LMDB) are made here, not in the measured
    # children, whose RSS must be that of holding the trees alone.
    for loc in locales(max(dict_trees)):
        if "json" in kinds or "pickle" in kinds:
            dict_of(d, loc)
        if "lmdb" in kinds:
            lmdb_of(d, loc)
    rows = []
    for kind in kinds:
        for n in trees if kind == "fms" else dict_trees:
            row = {}
            for trace in ("", "--trace"):
                p = subprocess.run(
                    [sys.executable, __file__, "child", kind, d, str(n)] + ([trace] if trace else []),
                    check=True,
                    capture_output=True,
                    text=True,
                )
                got = json.loads(p.stdout.strip().splitlines()[-1])
                if trace:
                    row["heap_mb"] = got["heap_mb"]
                else:
                    row.update(got)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    dict_rows = [r for r in rows if r["kind"] == "json"] or [{"ns_per_read": float("nan")}]
    dict_ns = dict_rows[0]["ns_per_read"]
    print(f"\nPython {sys.version.split()[0]}; RSS MB of the process (the fms rows: mapped file pages included); reads: {READS:,} random (id, field) pairs, best of 5\n")
    print("| peer | trees | load one tree | `t[id][field]` ns (last tree) | vs dict | fms: on en | Python heap MB | RSS MB | RSS MB, every page touched |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        load = (
            f"{r['open_us_median']:.0f} µs median, {r['open_us_max']:.0f} max (first: {r['first_open_us_median']:.0f}, {r['first_open_us_max']:.0f})"
            if r["kind"] == "fms"
            else f"{r['load_s'] * 1000:.0f} ms"
        )
        if r["kind"] == "lmdb":
            load = f"{r['load_s'] * 1e6:.0f} µs"
        touched = f"{r['rss_touched_mb']:.0f}" if "rss_touched_mb" in r else "—"
        en_ns = f"{r['ns_per_read_en']:.0f} ns ({r['ns_per_read_en'] / dict_ns:.2f}×)" if "ns_per_read_en" in r else "—"
        print(
            f"| {r['kind']} | {r['trees']} | {load} | {r['ns_per_read']:.0f} | "
            f"{r['ns_per_read'] / dict_ns:.2f}× | {en_ns} | {r['heap_mb']:.1f} | {r['rss_mb']:.0f} | {touched} |"
        )
    per_tree = [r for r in rows if r["kind"] == "json"]
    if per_tree:
        big = max(per_tree, key=lambda r: r["trees"])
        mb = (big["rss_mb"] - big["rss_base_mb"]) / big["trees"]
        print(f"\ndict of dicts: {mb:.0f} MB RSS per tree -> {int(512 // mb)} tree(s) fit in 512 MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--trees", type=int, default=40)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--trees", default="1,10,40")
    r.add_argument("--dict-trees", default="1,10")
    r.add_argument("--kinds", default="fms,json,pickle,lmdb", help="which peers to run")
    c = sub.add_parser("child")
    c.add_argument("kind")
    c.add_argument("dir")
    c.add_argument("n", type=int)
    c.add_argument("--trace", action="store_true")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir, a.trees)
    elif a.cmd == "run":
        run(
            a.dir,
            [int(x) for x in a.trees.split(",")],
            [int(x) for x in a.dict_trees.split(",")],
            a.kinds.split(","),
        )
    else:
        child(a.kind, a.dir, a.n, a.trace)


if __name__ == "__main__":
    main()
