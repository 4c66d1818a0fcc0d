"""Tests of the Python package `fms`, run against the extension maturin built."""

import collections.abc as abc
import copy
import gc
import json
import os
import pickle
import sys
import threading
import time

import pytest

import fms

VIDEO = {
    "title": "Intro to algebra",
    "views": 1234,
    "ratio": 0.25,
    "big": 2**40,
    "live": True,
    "gone": None,
    "blob": b"\x00\xff",
    "children": ["exercise:1", {"kind": "quiz", "n": 3}, [1, 2]],
    "meta": {"lang": "en", "tags": ["math", "intro"]},
    "body": "A long description that repeats. " * 40,
}


def tree(n=200):
    """A small content tree: n videos and a topic, enough text for compression to act."""
    recs = {}
    for i in range(n):
        r = dict(VIDEO)
        r["title"] = f"Video number {i} about algebra and functions"
        r["views"] = i
        r["body"] = f"Video {i}: " + "Lines, slopes and intercepts explained slowly. " * 30
        recs[f"video:{i}"] = r
    recs["topic:algebra"] = {"title": "Algebra", "children": [f"video:{i}" for i in range(n)]}
    return recs


@pytest.fixture(scope="module")
def en_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("trees") / "en.fms"
    info = fms.build(tree(), path)
    assert info["records"] == 201 and info["bytes"] == path.stat().st_size
    return path


@pytest.fixture()
def en(en_path):
    return fms.Snapshot.open(en_path)


def plain(v):
    return fms.to_python(v) if isinstance(v, (fms.Record, fms.List)) else v


# --- Snapshot --------------------------------------------------------------------------


def test_snapshot_is_a_mapping_of_ids(en, en_path):
    assert isinstance(en, abc.Mapping)
    assert len(en) == 201
    assert "video:7" in en and "video:999" not in en and 7 not in en
    ids = list(en)
    assert ids[:2] == ["video:0", "video:1"] and ids[-1] == "topic:algebra"
    assert en.get("video:999") is None and en.get("video:999", 5) == 5 and en.get(3) is None
    with pytest.raises(KeyError) as e:
        en["video:999"]
    assert "video:999" in str(e.value)
    assert list(en.keys())[:1] == ["video:0"] and "video:3" in en.keys()
    assert next(iter(en.values())) == en["video:0"]
    assert dict(en.items())["video:5"]["views"] == 5
    assert len(dict(en)) == 201
    assert len(en.hash) == 32 and en.base is None and en.depth == 0 and not en.is_overlay
    assert en.nbytes == os.path.getsize(en_path)
    assert "records=201" in repr(en)
    en.verify()


def test_iterating_ids_is_lazy_and_complete(en):
    it = iter(en)
    assert next(it) == "video:0"
    assert it.__length_hint__() == 200
    assert len(list(it)) == 200
    assert list(it) == []


# --- Record ----------------------------------------------------------------------------


def test_record_reads_every_kind_of_value(en):
    rec = en["video:7"]
    assert rec["title"] == "Video number 7 about algebra and functions"
    assert rec["views"] == 7 and type(rec["views"]) is int
    assert rec["ratio"] == 0.25 and rec["big"] == 2**40
    assert rec["live"] is True and rec["gone"] is None and rec["blob"] == b"\x00\xff"
    assert rec["body"].startswith("Video 7: Lines") and len(rec["body"]) > 1000
    assert rec.get("views", 0) == 7 and rec.get("nope", 0) == 0 and rec.get("nope") is None
    assert rec.get(42, "d") == "d"
    assert "title" in rec and "nope" not in rec and 1 not in rec
    assert len(rec) == len(VIDEO)
    assert list(rec) == list(VIDEO)
    with pytest.raises(KeyError):
        rec["nope"]
    with pytest.raises(KeyError):
        rec[1]
    with pytest.raises(KeyError):
        en[("video:1",)]


def test_record_is_a_mapping(en):
    rec = en["video:3"]
    assert isinstance(rec, abc.Mapping) and not isinstance(rec, dict)
    assert list(rec.keys()) == list(VIDEO) and "title" in rec.keys()
    assert rec.keys() & {"title", "x"} == {"title"}
    values = list(rec.values())
    assert values[1] == 3 and len(values) == len(VIDEO)
    items = dict(rec.items())
    assert items["views"] == 3
    d = dict(rec)
    assert d["views"] == 3 and isinstance(d["meta"], fms.Record)
    assert {**rec}["title"] == rec["title"]
    expected = dict(tree()["video:3"])
    assert rec == expected and expected == rec
    assert rec != {**expected, "views": 4} and not (rec == {"title": "x"})
    assert rec == en["video:3"] and rec != en["video:4"]
    assert (rec == 5) is False
    with pytest.raises(TypeError):
        hash(rec)


def test_match_mapping_and_sequence_patterns(en):
    match en["video:5"]:
        case {"title": str(t), "views": 5, "meta": {"lang": lang}}:
            assert t.startswith("Video number 5") and lang == "en"
        case _:
            pytest.fail("mapping pattern did not match")
    match en["video:5"]["children"]:
        case [first, {"kind": kind}, [a, b]]:
            assert (first, kind, a, b) == ("exercise:1", "quiz", 1, 2)
        case _:
            pytest.fail("sequence pattern did not match")


def test_nested_values_are_views(en):
    rec = en["video:1"]
    children = rec["children"]
    assert isinstance(children, fms.List) and isinstance(children, abc.Sequence)
    assert len(children) == 3 and children[0] == "exercise:1" and children[-1] == [1, 2]
    assert isinstance(children[1], fms.Record) and children[1]["n"] == 3
    assert children[0:2] == ["exercise:1", {"kind": "quiz", "n": 3}]
    assert children[::-1][0] == [1, 2]
    assert list(reversed(children))[-1] == "exercise:1"
    assert "exercise:1" in children and "x" not in children
    assert children.index("exercise:1") == 0 and children.count([1, 2]) == 1
    with pytest.raises(ValueError):
        children.index("x")
    with pytest.raises(IndexError):
        children[3]
    with pytest.raises(IndexError):
        children[-4]
    with pytest.raises(TypeError):
        children["a"]
    assert children == ["exercise:1", {"kind": "quiz", "n": 3}, [1, 2]]
    assert children == ("exercise:1", {"kind": "quiz", "n": 3}, [1, 2])
    assert children != ["exercise:1"]
    meta = rec["meta"]
    assert meta == {"lang": "en", "tags": ["math", "intro"]}
    assert meta["tags"][1] == "intro"
    assert list(iter(meta["tags"])) == ["math", "intro"]


def test_to_json_and_json_module(en):
    rec = en["topic:algebra"]
    assert json.loads(rec.to_json()) == tree()["topic:algebra"]
    assert rec.to_json() == json.dumps(tree()["topic:algebra"], separators=(",", ":"))
    assert json.loads(rec["children"].to_json())[:2] == ["video:0", "video:1"]
    assert json.loads(json.dumps(rec, default=fms.to_python)) == tree()["topic:algebra"]
    with pytest.raises(TypeError):
        fms.to_python(object())
    # bytes are no JSON: the json module's `default` protocol raises TypeError.
    with pytest.raises(TypeError):
        json.dumps(en["video:0"], default=fms.to_python)
    video = en["video:0"]
    assert video.to_dict()["meta"] == {"lang": "en", "tags": ["math", "intro"]}
    assert type(video.to_dict()["children"]) is list
    as_list = video["children"].to_list()
    assert type(as_list) is list and type(as_list[1]) is dict and as_list[2] == [1, 2]
    assert fms.FORMAT_VERSION == 6


def test_pickling_gives_plain_containers(en):
    rec = en["video:2"]
    back = pickle.loads(pickle.dumps(rec))
    assert type(back) is dict and back == tree()["video:2"]
    assert type(back["meta"]) is dict and type(back["children"]) is list
    lst = pickle.loads(pickle.dumps(rec["children"]))
    assert type(lst) is list and lst[1] == {"kind": "quiz", "n": 3}
    assert copy.deepcopy(rec) == tree()["video:2"]


def test_key_names_are_interned_once_per_snapshot(en):
    a = list(en["video:1"])
    b = list(en["video:2"])
    assert all(x is y for x, y in zip(a, b))


def test_repr(en):
    assert repr(en["topic:algebra"]).startswith("fms.Record({'title': 'Algebra'")
    assert repr(en["video:1"]["meta"]["tags"]) == "fms.List(['math', 'intro'])"


# --- Lifetimes -------------------------------------------------------------------------


def test_records_keep_the_map_alive(en_path):
    snap = fms.Snapshot.open(en_path)
    rec = snap["video:9"]
    tags = rec["meta"]["tags"]
    ids = iter(snap)
    del snap
    gc.collect()
    assert rec["views"] == 9 and tags[0] == "math" and next(ids) == "video:0"


# --- Overlays --------------------------------------------------------------------------


def test_overlays(tmp_path, en):
    es_tree = tree()
    es_tree["video:1"] = {**es_tree["video:1"], "title": "Vídeo número 1"}
    del es_tree["video:2"]
    es_tree["video:es"] = {"title": "Sólo en español"}
    info = fms.build(es_tree, tmp_path / "es.fms", base=en)
    assert info["records"] > 0
    es = fms.Snapshot.open(tmp_path / "es.fms", base=en)
    assert es.is_overlay and es.depth == 1 and es.base is en
    assert len(es) == 201
    assert es["video:1"]["title"] == "Vídeo número 1" and es["video:1"]["views"] == 1
    assert "video:2" not in es and es.get("video:2") is None
    assert es["video:es"] == {"title": "Sólo en español"}
    assert es["video:3"] == en["video:3"]
    assert sorted(es) == sorted(es_tree)
    for id in es:
        assert es[id] == es_tree[id], id
    es.verify()
    from_memory = fms.Snapshot.from_bytes((tmp_path / "es.fms").read_bytes(), base=en)
    assert from_memory.hash == es.hash and from_memory["video:1"] == es["video:1"]
    # The wrong base: a precise error, no snapshot.
    other = tmp_path / "other.fms"
    fms.build({"a": {"b": 1}}, other)
    with pytest.raises(fms.BaseError) as e:
        fms.Snapshot.open(tmp_path / "es.fms", base=fms.Snapshot.open(other))
    assert "base" in str(e.value)
    with pytest.raises(fms.FmsError):
        fms.Snapshot.open(tmp_path / "es.fms")


def test_overlay_nested_maps_stored_as_patches_read_as_maps(tmp_path, en):
    # Format 5: a nested map the overlay changes (same keys) is a patch of en's map; it is
    # a view like any other, also inside a list, and outlives the record it came from.
    es_tree = tree()
    for i in range(0, 200, 2):
        r = es_tree[f"video:{i}"]
        es_tree[f"video:{i}"] = {
            **r,
            "meta": {**r["meta"], "lang": "es"},
            "children": ["exercise:1", {"kind": "prueba", "n": 3}, [1, 2]],
        }
    info = fms.build(es_tree, tmp_path / "es.fms", base=en)
    assert info["records"] == 201
    es = fms.Snapshot.open(tmp_path / "es.fms", base=en)
    es.verify()
    meta = es["video:4"]["meta"]
    quiz = es["video:4"]["children"][1]
    gc.collect()
    assert isinstance(meta, abc.Mapping) and dict(meta.items())["lang"] == "es"
    assert meta["tags"] == ["math", "intro"] and len(meta) == 2
    assert quiz == {"kind": "prueba", "n": 3} and quiz["kind"] == "prueba"
    assert json.loads(meta.to_json()) == es_tree["video:4"]["meta"]
    assert json.loads(es["video:4"]["children"].to_json())[1] == {"kind": "prueba", "n": 3}
    assert es["video:5"]["meta"]["lang"] == "en"
    for id in es:
        assert fms.to_python(es[id]) == es_tree[id], id


# --- Build -----------------------------------------------------------------------------


def test_build_inputs_and_errors(tmp_path):
    path = tmp_path / "t.fms"
    pairs = ((f"id:{i}", {"n": i, "t": (1, 2)}) for i in range(3))
    info = fms.build(pairs, str(path), compression="none")
    assert info["records"] == 3 and set(info["sections"]) >= {"pool", "data", "ids"}
    snap = fms.Snapshot.open(path)
    assert snap["id:2"] == {"n": 2, "t": [1, 2]}
    # Records read from a snapshot can be stored again.
    fms.build({"copy": snap["id:1"], "nested": {"l": snap["id:1"]["t"]}}, tmp_path / "c.fms")
    assert fms.Snapshot.open(tmp_path / "c.fms")["nested"] == {"l": [1, 2]}
    for level in (3, "19", "auto", None):
        fms.build({"a": {"s": "x" * 300}}, tmp_path / f"l{level}.fms", compression=level)

    bad = tmp_path / "bad.fms"
    cases = [
        ({"a": {"x": object()}}, TypeError, 'field "x"'),
        ({"a": {1: 2}}, TypeError, "keys must be str"),
        ({"a": {"x": 2**70}}, ValueError, "64 bits"),
        ({"a": [1]}, TypeError, "must be a dict"),
        ([("a", {}), ("a", {})], ValueError, "duplicate id"),
        ([("a",)], TypeError, "pair"),
        ([(1, {})], TypeError, "id must be a str"),
    ]
    for records, exc, words in cases:
        with pytest.raises(exc) as e:
            fms.build(records, bad)
        assert words in str(e.value), (records, str(e.value))
        assert not bad.exists(), "a failed build leaves nothing behind"
    for c in ("fast", 0, 23, 1.5):
        with pytest.raises(ValueError):
            fms.build({"a": {}}, bad, compression=c)
    with pytest.raises(OSError):
        fms.build({"a": {}}, tmp_path / "no" / "such" / "dir.fms")


def test_build_and_verify_release_the_gil(tmp_path):
    # With a switch interval of minutes, the ticker thread runs only when the main thread
    # blocks or releases the GIL. So ticks that appear during a call mean the call
    # released it; a call that held it throughout would leave the count unchanged.
    stop = threading.Event()
    ticks = []

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0)  # releases the GIL to whoever waits for it

    def ran_during(call):
        before = len(ticks)
        call()
        return len(ticks) - before

    big = tree(3000)
    old = sys.getswitchinterval()
    sys.setswitchinterval(300)
    t = threading.Thread(target=tick)
    try:
        t.start()
        # A call that holds the GIL gives 0 every time; one that releases it gives ticks as
        # soon as the OS schedules the ticker while it runs (a few tries on a busy machine).
        assert any(ran_during(lambda: fms.build(big, tmp_path / "big.fms")) for _ in range(5))
        snap = fms.Snapshot.open(tmp_path / "big.fms")
        assert any(ran_during(snap.verify) for _ in range(200))
        # Control: a call that keeps the GIL shows no ticks.
        assert not any(ran_during(lambda: sum(range(200_000))) for _ in range(20))
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()


# --- Bad input -------------------------------------------------------------------------


def test_malformed_files_raise(tmp_path, en_path):
    good = en_path.read_bytes()
    p = tmp_path / "x.fms"
    cases = {
        "empty": b"",
        "garbage": b"x" * 400,
        "truncated": good[: len(good) // 2],
        "header only": good[:64],
    }
    for name, data in cases.items():
        p.write_bytes(data)
        with pytest.raises(fms.SnapshotError) as e:
            fms.Snapshot.open(p)
        assert "malformed" in str(e.value) or "snapshot" in str(e.value), name
        with pytest.raises(fms.SnapshotError):
            fms.Snapshot.from_bytes(data)
    # Damage past the header: open succeeds (O(1)), verify names the problem, and reads
    # give values or exceptions, never a crash.
    for at in range(len(good) // 3, len(good), max(1, len(good) // 97)):
        data = bytearray(good)
        data[at] ^= 0x5A
        try:
            snap = fms.Snapshot.from_bytes(bytes(data))
        except fms.SnapshotError:
            continue
        with pytest.raises(fms.SnapshotError):
            snap.verify()
        for id in list(snap)[:50]:
            try:
                json.dumps(snap[id], default=fms.to_python)
            except (fms.SnapshotError, KeyError, ValueError, TypeError):
                pass


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        fms.Snapshot.open(tmp_path / "absent.fms")
    assert e.value.filename == str(tmp_path / "absent.fms")


# --- Store -----------------------------------------------------------------------------


def write_manifest(path, locales, default="en", bases=()):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"default_locale": default, "locales": locales, "bases": list(bases)}))
    os.replace(tmp, path)


def test_store_reload_and_eviction(tmp_path):
    t1 = tree(20)
    fms.build(t1, tmp_path / "en1.fms")
    en1 = fms.Snapshot.open(tmp_path / "en1.fms")
    es_tree = {**t1, "video:1": {**t1["video:1"], "title": "Uno"}}
    fms.build(es_tree, tmp_path / "es1.fms", base=en1)
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, {"en": "en1.fms", "es": "es1.fms"})

    store = fms.Store.open_manifest(manifest)
    assert store.default_locale == "en" and set(store.published()) == {"en", "es"}
    es = store.current("es")
    assert es["video:1"]["title"] == "Uno" and es.is_overlay
    assert store.current("fr")["video:1"]["title"] == t1["video:1"]["title"]
    assert store.current_exact("fr") is None
    assert store.current("es") is es, "one Python object per version"
    held = es["video:1"]
    held_list = es["video:1"]["children"]

    # A new version: es2 over en2; the old version keeps reading while held.
    t2 = {k: {**v, "views": -1} for k, v in t1.items()}
    fms.build(t2, tmp_path / "en2.fms")
    en2 = fms.Snapshot.open(tmp_path / "en2.fms")
    fms.build({**t2, "video:1": {**t2["video:1"], "title": "Uno v2"}}, tmp_path / "es2.fms", base=en2)
    write_manifest(manifest, {"en": "en2.fms", "es": "es2.fms"})
    published = store.reload(manifest)
    assert published["es"] != es.hash
    assert store.current("es")["video:1"]["title"] == "Uno v2"
    assert store.current("en")["video:3"]["views"] == -1
    assert store.evict_unpublished() == 2
    del es
    gc.collect()
    # A record held after its store evicted the version still reads.
    assert held["title"] == "Uno" and held["views"] == 1 and held_list[0] == "exercise:1"

    # A failing reload changes nothing and says which file.
    write_manifest(manifest, {"en": "en2.fms", "es": "missing.fms"})
    with pytest.raises(OSError) as e:
        store.reload(manifest)
    assert "missing.fms" in str(e.value)
    assert store.current("es")["video:1"]["title"] == "Uno v2"
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError):
        store.reload(tmp_path / "broken.json")
    write_manifest(manifest, {"en": "../en2.fms"})
    with pytest.raises(ValueError) as e:
        store.reload(manifest)
    assert "en2.fms" in str(e.value)
    assert store.current("es")["video:1"]["title"] == "Uno v2"


def test_threads_read_concurrently(en):
    errors = []

    def reader(k):
        try:
            for i in range(300):
                rec = en[f"video:{(i * k) % 200}"]
                assert rec["views"] == (i * k) % 200
                assert rec["meta"]["tags"][0] == "math"
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
