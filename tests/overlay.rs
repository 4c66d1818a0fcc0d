//! Overlays: an overlay read through its base equals a full snapshot of the merged tree,
//! for every accessor and for serde; stacked overlays likewise; bad bases and bad
//! overlays are clear errors.

mod common;

use std::sync::Arc;

use common::check_record;
use fms::{Error, Snapshot, SnapshotBuilder, TupleMap, Value};
use proptest::prelude::*;
use serde_json::json;

/// Keys from a small alphabet, so edits often keep a record's shape (the patch path).
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "title", "slug", "kind", "desc", "n", "tags", "meta", "x",
    ])
    .prop_map(String::from)
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::Int),
        any::<i64>().prop_map(Value::Int),
        prop::sample::select(vec![0.0, -0.0, 0.5, 1e300]).prop_map(Value::Float),
        "\\PC{0,6}".prop_map(Value::Str),
        "[a-z ]{5,40}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Map(Box::new(TupleMap::from_pairs(kv)))),
        ]
    })
}

fn map() -> impl Strategy<Value = TupleMap> {
    prop::collection::vec((key(), value()), 0..7).prop_map(TupleMap::from_pairs)
}

/// One edit of an overlay. Indexes pick among the ids the tree has had.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace one field of a record (keeps its shape: the patch path).
    Field(usize, usize, Value),
    /// Replace one value inside a nested map of a record, or inside a map in one of its
    /// lists, keeping every shape (version 5: a nested patch).
    Deep(usize, usize, usize, Value),
    /// Replace a whole record (may change its shape).
    Replace(usize, TupleMap),
    /// Insert a record equal to what the tree has (costs nothing).
    Same(usize),
    /// Remove a record (a tombstone, or dropping one this overlay added).
    Remove(usize),
    /// Add a record with a new id (or an id a lower overlay removed).
    Add(u16, TupleMap),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), any::<usize>(), value()).prop_map(|(i, f, v)| Edit::Field(i, f, v)),
        2 => (any::<usize>(), any::<usize>(), any::<usize>(), value())
            .prop_map(|(i, f, g, v)| Edit::Deep(i, f, g, v)),
        2 => (any::<usize>(), map()).prop_map(|(i, m)| Edit::Replace(i, m)),
        1 => any::<usize>().prop_map(Edit::Same),
        2 => any::<usize>().prop_map(Edit::Remove),
        2 => (any::<u16>(), map()).prop_map(|(n, m)| Edit::Add(n, m)),
    ]
}

/// The merged tree an overlay should read as, in its documented order: the base's ids in
/// the base's order (a changed one in place, a removed one gone), then added ids in the
/// order they were first given to the builder.
struct Model {
    base: Vec<(String, Option<TupleMap>)>,
    added: Vec<(String, Option<TupleMap>)>,
}

impl Model {
    fn of(tree: &[(String, TupleMap)]) -> Model {
        Model {
            base: tree
                .iter()
                .map(|(i, m)| (i.clone(), Some(m.clone())))
                .collect(),
            added: Vec::new(),
        }
    }

    fn merged(&self) -> Vec<(String, TupleMap)> {
        self.base
            .iter()
            .chain(&self.added)
            .filter_map(|(i, m)| Some((i.clone(), m.clone()?)))
            .collect()
    }

    fn slot(&mut self, i: usize) -> Option<&mut (String, Option<TupleMap>)> {
        let n = self.base.len() + self.added.len();
        if n == 0 {
            return None;
        }
        let i = i % n;
        if i < self.base.len() {
            self.base.get_mut(i)
        } else {
            self.added.get_mut(i - self.base.len())
        }
    }

    /// Applies `e` to the model and to the builder.
    fn apply(&mut self, e: &Edit, b: &mut SnapshotBuilder) {
        match e {
            Edit::Field(i, f, v) => {
                if let Some((id, m)) = self.slot(*i) {
                    let mut next = m.clone().unwrap_or_default();
                    let k = next.keys().nth(f % next.len().max(1)).map(str::to_owned);
                    next.insert(k.as_deref().unwrap_or("title"), v.clone());
                    b.upsert(id, &next).unwrap();
                    *m = Some(next);
                }
            }
            Edit::Deep(i, f, g, v) => {
                if let Some((id, Some(m))) = self.slot(*i) {
                    let mut next = m.clone();
                    let k = next.keys().nth(f % next.len().max(1)).map(str::to_owned);
                    let Some(k) = k else { return };
                    let mut field = next.get(&k).cloned().unwrap_or(Value::Null);
                    set_deep(&mut field, *g, v.clone());
                    next.insert(&k, field);
                    b.upsert(id, &next).unwrap();
                    *m = next;
                }
            }
            Edit::Replace(i, new) => {
                if let Some((id, m)) = self.slot(*i) {
                    b.upsert(id, new).unwrap();
                    *m = Some(new.clone());
                }
            }
            Edit::Same(i) => {
                if let Some((id, Some(m))) = self.slot(*i) {
                    b.upsert(id, &*m).unwrap();
                }
            }
            Edit::Remove(i) => {
                if let Some((id, m)) = self.slot(*i) {
                    match m.take() {
                        Some(_) => b.remove(id).unwrap(),
                        None => {
                            // Nothing to remove: an unknown id is an error unless the base
                            // has it (removing a base record twice is still a tombstone).
                            let r = b.remove(id);
                            let in_base = b.base().is_some_and(|s| s.contains(id));
                            assert_eq!(r.is_ok(), in_base, "remove({id}) = {r:?}");
                        }
                    }
                }
            }
            Edit::Add(n, m) => {
                // Half the time an id of the generated trees (`r:0`..`r:15`): in a stacked
                // overlay that re-adds an id a lower level removed.
                let id = if n % 2 == 0 {
                    format!("r:{}", n / 2 % 16)
                } else {
                    format!("new:{n}")
                };
                let known = self.base.iter().chain(&self.added).any(|(i, _)| *i == id);
                b.upsert(&id, m).unwrap();
                match self
                    .added
                    .iter_mut()
                    .chain(&mut self.base)
                    .find(|(i, _)| *i == id)
                {
                    Some((_, slot)) => *slot = Some(m.clone()),
                    None => {
                        assert!(!known);
                        self.added.push((id, Some(m.clone())));
                    }
                }
            }
        }
    }
}

/// Replaces the `g`-th value of the map `x` is, or of the first map found in the list `x`
/// is (from its `g`-th element on), with `v`; keys stay as they are.
fn set_deep(x: &mut Value, g: usize, v: Value) {
    match x {
        Value::Map(m) if !m.is_empty() => {
            let k = m
                .keys()
                .nth(g % m.len())
                .map(str::to_owned)
                .unwrap_or_default();
            m.insert(&k, v);
        }
        Value::List(items) if !items.is_empty() => {
            let n = items.len();
            if let Some(e) = (0..n)
                .map(|j| (g + j) % n)
                .find(|&j| matches!(&items[j], Value::Map(m) if !m.is_empty()))
            {
                set_deep(&mut items[e], g / n, v);
            }
        }
        _ => {}
    }
}

fn tree() -> impl Strategy<Value = Vec<(String, TupleMap)>> {
    prop::collection::vec(map(), 0..16).prop_map(|maps| {
        maps.into_iter()
            .enumerate()
            .map(|(i, m)| (format!("r:{i}"), m))
            .collect()
    })
}

fn full(tree: &[(String, TupleMap)]) -> Snapshot {
    Snapshot::from_bytes(common::build(tree)).unwrap()
}

/// Everything the overlay answers equals what a full snapshot of `merged` answers.
fn check_equivalent(over: &Snapshot, merged: &[(String, TupleMap)], removed: &[String]) {
    over.verify().unwrap();
    let full = full(merged);
    assert_eq!(over.len(), full.len());
    assert_eq!(over.is_empty(), full.is_empty());
    assert_eq!(
        over.ids().collect::<Vec<_>>(),
        full.ids().collect::<Vec<_>>()
    );
    let pairs: Vec<_> = over
        .iter()
        .map(|(id, r)| (id, serde_json::to_string(&r).unwrap()))
        .collect();
    let want: Vec<_> = full
        .iter()
        .map(|(id, r)| (id, serde_json::to_string(&r).unwrap()))
        .collect();
    assert_eq!(pairs, want);
    let root = {
        let mut s = over;
        while let Some(b) = s.base() {
            s = b;
        }
        s
    };
    for (id, m) in merged {
        assert!(over.contains(id));
        let rec = over.get(id).unwrap_or_else(|| panic!("{id} missing"));
        check_record(over, rec, m);
        // A key resolved in the root of the chain works on the overlay's records.
        for (k, v) in m.iter() {
            if let Some(key) = root.key(k) {
                assert!(rec.get_key(key).unwrap() == *v);
            }
        }
        let frec = full.get(id).unwrap();
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            serde_json::to_string(&frec).unwrap()
        );
    }
    for id in removed {
        if !merged.iter().any(|(i, _)| i == id) {
            assert!(over.get(id).is_none(), "{id} should be gone");
            assert!(!over.contains(id));
        }
    }
}

/// Builds an overlay over `base` from `edits`; returns it and the model's merged tree.
fn overlay(
    base: &Arc<Snapshot>,
    model: &mut Model,
    edits: &[Edit],
) -> (Snapshot, Vec<(String, TupleMap)>, Vec<String>) {
    let mut b = SnapshotBuilder::with_base(base);
    for e in edits {
        model.apply(e, &mut b);
    }
    let merged = model.merged();
    assert_eq!(b.len(), merged.len());
    let removed = model
        .base
        .iter()
        .chain(&model.added)
        .filter(|(_, m)| m.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let snap = Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), base.clone()).unwrap();
    (snap, merged, removed)
}

proptest! {
    // PROPTEST_CASES=N runs more cases (e.g. before a release).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(192)
    ))]

    #[test]
    fn overlay_reads_as_the_merged_tree(t in tree(), edits in prop::collection::vec(edit(), 0..24)) {
        let base = Arc::new(full(&t));
        let mut model = Model::of(&t);
        let (over, merged, removed) = overlay(&base, &mut model, &edits);
        check_equivalent(&over, &merged, &removed);
    }

    #[test]
    fn stacked_overlays_read_as_the_merged_tree(
        t in tree(),
        e1 in prop::collection::vec(edit(), 0..16),
        e2 in prop::collection::vec(edit(), 0..16),
    ) {
        let base = Arc::new(full(&t));
        let mut m1 = Model::of(&t);
        let (o1, merged1, _) = overlay(&base, &mut m1, &e1);
        let o1 = Arc::new(o1);
        // The second level's base order is the first level's merged order.
        let mut m2 = Model::of(&merged1);
        let (o2, merged2, removed2) = overlay(&o1, &mut m2, &e2);
        prop_assert_eq!(o2.depth(), 2);
        check_equivalent(&o2, &merged2, &removed2);
    }

    #[test]
    fn three_stacked_overlays_read_as_the_merged_tree(
        t in tree(),
        e1 in prop::collection::vec(edit(), 0..12),
        e2 in prop::collection::vec(edit(), 0..12),
        e3 in prop::collection::vec(edit(), 0..12),
    ) {
        let base = Arc::new(full(&t));
        let mut m1 = Model::of(&t);
        let (o1, merged1, _) = overlay(&base, &mut m1, &e1);
        let mut m2 = Model::of(&merged1);
        let (o2, merged2, _) = overlay(&Arc::new(o1), &mut m2, &e2);
        let mut m3 = Model::of(&merged2);
        let (o3, merged3, removed3) = overlay(&Arc::new(o2), &mut m3, &e3);
        prop_assert_eq!(o3.depth(), 3);
        check_equivalent(&o3, &merged3, &removed3);
    }
}

/// A base of `n` records `r:0` … `r:{n-1}`, record `r:i` with title "x" and `n` = i.
fn numbered_base(n: i64) -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for i in 0..n {
        b.insert(&format!("r:{i}"), &rec("x", i)).unwrap();
    }
    Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap())
}

fn rec(title: &str, n: i64) -> TupleMap {
    TupleMap::from_pairs([
        ("title".to_string(), Value::Str(title.into())),
        ("n".to_string(), Value::Int(n)),
        (
            "tags".to_string(),
            Value::List(vec![Value::Str("a".into()), Value::Int(n)]),
        ),
    ])
}

/// Changes, removals and re-additions at every level of a depth-3 chain, through the
/// ordinals of ids whose homes are at different levels: the chain reads (get, contains,
/// ids, iter, serde) as a full snapshot of the merged tree, in the documented order.
#[test]
fn a_depth_3_chain_with_changes_removals_and_readditions_reads_as_the_merged_tree() {
    let mut b = SnapshotBuilder::new();
    for id in ["a", "b", "c", "d", "e"] {
        b.insert(id, &rec(id, 0)).unwrap();
    }
    let l0 = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    // Level 1: change a (a patch), remove b and c, add f.
    let mut o = SnapshotBuilder::with_base(&l0);
    o.insert("a", &rec("a", 1)).unwrap();
    o.remove("b").unwrap();
    o.remove("c").unwrap();
    o.insert("f", &rec("f", 1)).unwrap();
    let l1 = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l0).unwrap());
    // Level 2: add b back, change f (whose home is level 1), remove d, add g.
    let mut o = SnapshotBuilder::with_base(&l1);
    o.insert("b", &rec("b", 2)).unwrap();
    o.insert("f", &rec("f", 2)).unwrap();
    o.remove("d").unwrap();
    o.insert("g", &rec("g", 2)).unwrap();
    let l2 = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l1).unwrap());
    let merged2 = [
        ("a", rec("a", 1)),
        ("e", rec("e", 0)),
        ("f", rec("f", 2)),
        ("b", rec("b", 2)),
        ("g", rec("g", 2)),
    ];
    let owned = |m: &[(&str, TupleMap)]| -> Vec<(String, TupleMap)> {
        m.iter().map(|(i, r)| (i.to_string(), r.clone())).collect()
    };
    check_equivalent(&l2, &owned(&merged2), &["c".into(), "d".into()]);
    // Level 3: change b (re-added at level 2: its new home), remove a (changed at level
    // 1), add c back (removed at level 1), change e (untouched since level 0), remove g.
    let mut o = SnapshotBuilder::with_base(&l2);
    o.insert("b", &rec("b", 3)).unwrap();
    o.remove("a").unwrap();
    o.insert("c", &rec("c", 3)).unwrap();
    o.insert("e", &rec("e", 3)).unwrap();
    o.remove("g").unwrap();
    let bytes = o.to_bytes().unwrap();
    let l3 = Snapshot::overlay_from_bytes(bytes, l2.clone()).unwrap();
    assert_eq!(l3.depth(), 3);
    let merged3 = [
        ("e", rec("e", 3)),
        ("f", rec("f", 2)),
        ("b", rec("b", 3)),
        ("c", rec("c", 3)),
    ];
    let gone: Vec<String> = ["a", "d", "g"].iter().map(|s| s.to_string()).collect();
    check_equivalent(&l3, &owned(&merged3), &gone);
    // What each level stores: level 3 adds one id (c) and changes four.
    let o = l3.stats().overlay.unwrap();
    assert_eq!(
        (o.added, o.replaced + o.patched, o.removed),
        (1, 2, 2),
        "{o:?}"
    );
    assert_eq!(l3.stats().id_entries, 1);
}

/// The CHANGES section of `bytes` (an overlay): `(its offset, its length)`.
fn changes_at(bytes: &[u8]) -> (usize, usize) {
    let (e, _) = fms::format::SectionEntry::read(bytes, 6).unwrap();
    assert_eq!(e.kind, fms::format::section::CHANGES);
    (e.offset as usize, e.len as usize)
}

/// `bytes` with `f` applied and the checksums fixed, so that only `verify`'s structural
/// checks can reject it; it must open, read without panicking, and fail `verify`.
fn must_fail_verify(bytes: &[u8], base: &Arc<Snapshot>, what: &str, f: impl Fn(&mut Vec<u8>)) {
    let mut bad = bytes.to_vec();
    f(&mut bad);
    let bad = common::rechecksum(bad);
    match Snapshot::overlay_from_bytes(bad, base.clone()) {
        Ok(snap) => {
            common::read_everything(&snap);
            assert!(snap.verify().is_err(), "verify accepted {what}");
        }
        Err(e) => panic!("{what}: should open (only verify can tell), got {e}"),
    }
}

#[test]
fn verify_rejects_bad_changes_bitsets_ranks_and_references() {
    // 600 base records: 10 bitset words, two rank blocks, a partial last word.
    let base = numbered_base(600);
    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("r:5", &rec("changed", 5)).unwrap();
    o.insert("r:550", &rec("changed", 550)).unwrap();
    o.remove("r:7").unwrap();
    o.insert("new", &rec("new", 1)).unwrap();
    let good = o.to_bytes().unwrap();
    let snap = Snapshot::overlay_from_bytes(good.clone(), base.clone()).unwrap();
    snap.verify().unwrap();
    assert_eq!(
        snap.get("r:5")
            .unwrap()
            .get("title")
            .unwrap()
            .to_str()
            .as_deref(),
        Some("changed")
    );
    assert!(snap.get("r:7").is_none());
    let (at, len) = changes_at(&good);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!((u32_at(&good, at), u32_at(&good, at + 4)), (3, 600));
    let words = at + 8;
    let ranks = words + 8 * 10;
    let refs = ranks + 4 * 2;
    assert_eq!(refs + 4 * 3, at + len);
    assert_eq!((u32_at(&good, ranks), u32_at(&good, ranks + 4)), (0, 2));
    let flip = |bit: usize| move |b: &mut Vec<u8>| b[words + bit / 8] ^= 1 << (bit % 8);
    // A flipped bit: one change more or one fewer than counted.
    must_fail_verify(&good, &base, "a set bit added", flip(6));
    must_fail_verify(&good, &base, "a set bit cleared", flip(5));
    must_fail_verify(&good, &base, "a bit past the ordinal end", flip(601));
    let set = |b: &mut Vec<u8>, i: usize, v: u32| b[i..i + 4].copy_from_slice(&v.to_le_bytes());
    must_fail_verify(&good, &base, "a wrong rank", |b| set(b, ranks + 4, 1));
    must_fail_verify(&good, &base, "a nonzero first rank", |b| set(b, ranks, 1));
    must_fail_verify(&good, &base, "a reference into a node", |b| {
        let r = u32_at(b, refs);
        set(b, refs, r + 1)
    });
    must_fail_verify(&good, &base, "a reference past the data", |b| {
        set(b, refs, u32::MAX - 1)
    });
    // Data offset 0: the first record's tags list (children are written first).
    must_fail_verify(&good, &base, "a reference to a list", |b| set(b, refs, 0));
    // The tombstone count in the OVERLAY section must match the references': r:7's
    // tombstone (the second reference) turned into a change.
    must_fail_verify(&good, &base, "a tombstone turned into a change", |b| {
        let r = u32_at(b, refs);
        set(b, refs + 4, r)
    });
    assert_eq!(u32_at(&good, refs + 4), u32::MAX);
}

/// A changed id's reference is found by rank, counted from the nearer of the two rank
/// directory entries around its word (up from its block's, or down from the next block's
/// or the total): every word position of full and partial blocks, a last block that is
/// full (no directory entry after it), set bits at either end of a word, and blocks with
/// no set bits at all, read back the right record.
#[test]
fn changes_rank_from_either_side_of_a_block() {
    // Bitset words: 21 (rank blocks of 8, 8 and 5 words), 16 (two full blocks), 8 (one),
    // 2 (one short block).
    for n in [1300, 1024, 512, 100] {
        let base = numbered_base(n);
        // Changed or removed: a spread of ordinals (first and last bits of words
        // included), none in words 8..=10 (a block whose counts come from its
        // neighbours' entries).
        let touched = |i: i64| !(512..704).contains(&i) && (i % 7 == 0 || i % 64 == 63);
        let removed = |i: i64| i % 49 == 0;
        let mut o = SnapshotBuilder::with_base(&base);
        for i in (0..n).filter(|&i| touched(i)) {
            if removed(i) {
                o.remove(&format!("r:{i}")).unwrap();
            } else {
                o.insert(&format!("r:{i}"), &rec(&format!("changed {i}"), -i))
                    .unwrap();
            }
        }
        let snap = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base).unwrap();
        snap.verify().unwrap();
        for i in 0..n {
            let id = format!("r:{i}");
            let got = snap.get(&id).map(|r| r.get("n").and_then(|v| v.as_i64()));
            let want = match (touched(i), removed(i)) {
                (true, true) => None,
                (true, false) => Some(Some(-i)),
                (false, _) => Some(Some(i)),
            };
            assert_eq!(got, want, "{id} of {n}");
            assert_eq!(snap.contains(&id), want.is_some(), "{id} of {n}");
        }
    }
}

/// A CHANGES bit may only name an id the base has, at the ordinal of its home: not an id
/// removed below (it must be added again, as an own entry), nor the old home of an id
/// removed and added back.
#[test]
fn verify_rejects_changes_of_ids_the_base_lacks_or_has_elsewhere() {
    let mut b = SnapshotBuilder::new();
    for id in ["x", "y", "z"] {
        b.insert(id, &rec(id, 0)).unwrap();
    }
    let l0 = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    // Level 1 removes x (ordinal 0); level 2 adds it back (ordinal 3, level 2's first).
    let mut o = SnapshotBuilder::with_base(&l0);
    o.remove("x").unwrap();
    let l1 = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l0).unwrap());
    // Level 2 changes y (ordinal 1): moving its bit to ordinal 0 names the removed x.
    let mut o = SnapshotBuilder::with_base(&l1);
    o.insert("y", &rec("y", 2)).unwrap();
    let good = o.to_bytes().unwrap();
    Snapshot::overlay_from_bytes(good.clone(), l1.clone())
        .unwrap()
        .verify()
        .unwrap();
    let (at, _) = changes_at(&good);
    assert_eq!(good[at + 8], 0b010);
    must_fail_verify(&good, &l1, "a change of a removed id", |b| {
        b[at + 8] = 0b001
    });
    // Level 2 adds x back; level 3 changes it (ordinal 3) and z (ordinal 2). Moving x's
    // bit to its old home (ordinal 0) must fail.
    let mut o = SnapshotBuilder::with_base(&l1);
    o.insert("x", &rec("x", 2)).unwrap();
    let l2 = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l1).unwrap());
    let mut o = SnapshotBuilder::with_base(&l2);
    o.insert("x", &rec("x", 3)).unwrap();
    let good = o.to_bytes().unwrap();
    let l3 = Snapshot::overlay_from_bytes(good.clone(), l2.clone()).unwrap();
    l3.verify().unwrap();
    assert_eq!(l3.get("x").unwrap().get("n").unwrap().as_i64(), Some(3));
    let (at, _) = changes_at(&good);
    assert_eq!(good[at + 8], 0b1000);
    must_fail_verify(&good, &l2, "a change of an id's old home", |b| {
        b[at + 8] = 0b0001
    });
}

fn article(i: usize, title: &str) -> TupleMap {
    TupleMap::try_from(json!({
        "slug": format!("article-{i}"),
        "title": title,
        "description": format!("A long description of article {i} that a locale may translate."),
        "kind": "Article",
        "duration": i * 10,
        "keywords": ["math", "algebra", format!("kw{i}")],
        "children": (0..5).map(|c| format!("exercise:{i}:{c}")).collect::<Vec<_>>(),
        "body": [{"type": "p", "text": format!("Paragraph one of {i}.")},
                 {"type": "p", "text": format!("Paragraph two of {i}.")}],
        "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8,
    }))
    .unwrap()
}

fn base_of(n: usize) -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for i in 0..n {
        b.insert(&format!("a:{i}"), &article(i, &format!("Title {i}")))
            .unwrap();
    }
    Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap())
}

#[test]
fn an_overlay_stores_only_what_differs() {
    let base = base_of(50);
    let mut b = SnapshotBuilder::with_base(&base);
    for i in 0..50 {
        // Ten records change their title; the others are given unchanged.
        let title = if i % 5 == 0 {
            format!("Título {i}")
        } else {
            format!("Title {i}")
        };
        b.insert(&format!("a:{i}"), &article(i, &title)).unwrap();
    }
    let (bytes, info) = b.to_bytes_with_info().unwrap();
    let o = info.overlay.clone().unwrap();
    assert_eq!((o.patched, o.unchanged, o.added, o.removed), (10, 40, 0, 0));
    assert_eq!(o.base, base.hash());
    assert_eq!(info.records, 50);
    // The data section holds ten small patches: no whole record, no list, no nested map.
    let data = info.sections.iter().find(|(s, _)| *s == "data").unwrap().1;
    assert!(data <= 10 * 12, "data section {data} bytes for 10 patches");
    // The pool holds only the ten new titles (ids and everything else are the base's).
    let pool = info.sections.iter().find(|(s, _)| *s == "pool").unwrap().1;
    let titles: u64 = (0..50)
        .step_by(5)
        .map(|i| format!("Título {i}").len() as u64 + 1)
        .sum();
    assert_eq!(pool, titles);
    assert_eq!((info.shapes, info.keys), (0, 0), "no new shape or key");
    let over = Snapshot::overlay_from_bytes(bytes, base.clone()).unwrap();
    over.verify().unwrap();
    let rec = over.get("a:5").unwrap();
    assert_eq!(
        rec.get("title").unwrap().to_str().as_deref(),
        Some("Título 5")
    );
    assert_eq!(
        rec.get("children").unwrap().as_list().unwrap().len(),
        5,
        "inherited from the base"
    );
    assert!(rec == article(5, "Título 5"));
}

#[test]
fn a_changed_shape_reuses_the_base_nested_values() {
    let base = base_of(3);
    let mut b = SnapshotBuilder::with_base(&base);
    let mut m = article(1, "Title 1");
    m.insert("new_field", "x");
    b.insert("a:1", &m).unwrap();
    let info = b.to_bytes_with_info().unwrap().1;
    assert_eq!(info.overlay.unwrap().replaced, 1);
    // One new map node (the record); its lists and nested maps are the base's.
    assert_eq!(info.nodes, 1);
}

#[test]
fn remove_absent_makes_the_overlay_the_given_tree() {
    let base = base_of(10);
    let mut b = SnapshotBuilder::with_base(&base);
    for i in (0..10).filter(|i| i % 3 != 0) {
        b.insert(&format!("a:{i}"), &article(i, &format!("Title {i}")))
            .unwrap();
    }
    b.insert("a:new", &article(99, "New")).unwrap();
    assert_eq!(b.remove_absent().unwrap(), 4);
    let over = Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), base.clone()).unwrap();
    over.verify().unwrap();
    let ids: Vec<_> = over.ids().collect();
    assert_eq!(
        ids,
        ["a:1", "a:2", "a:4", "a:5", "a:7", "a:8", "a:new"],
        "base order, then added"
    );
    assert_eq!(over.len(), 7);
}

#[test]
fn builder_errors_on_unknown_and_duplicate_ids() {
    let base = base_of(2);
    let mut b = SnapshotBuilder::with_base(&base);
    assert!(matches!(b.remove("nope"), Err(Error::UnknownId { .. })));
    b.insert("a:0", &article(0, "changed")).unwrap();
    assert!(matches!(
        b.insert("a:0", &article(0, "again")),
        Err(Error::DuplicateId { .. })
    ));
    // Remove, then re-add: a change in place.
    b.remove("a:1").unwrap();
    b.insert("a:1", &article(1, "back")).unwrap();
    let over = Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), base).unwrap();
    assert_eq!(over.ids().collect::<Vec<_>>(), ["a:0", "a:1"]);
    assert_eq!(
        over.get("a:1")
            .unwrap()
            .get("title")
            .unwrap()
            .to_str()
            .as_deref(),
        Some("back")
    );
}

#[test]
fn wrong_or_missing_base_is_a_clear_error() {
    let base = base_of(3);
    let other = base_of(4);
    let mut b = SnapshotBuilder::with_base(&base);
    b.insert("a:0", &article(0, "x")).unwrap();
    let bytes = b.to_bytes().unwrap();
    match Snapshot::overlay_from_bytes(bytes.clone(), other.clone()) {
        Err(Error::BaseMismatch { expected, found }) => {
            assert_eq!((expected, found), (base.hash(), other.hash()));
        }
        r => panic!("expected BaseMismatch, got {r:?}"),
    }
    match Snapshot::from_bytes(bytes.clone()) {
        Err(Error::MissingBase { base: b, .. }) => assert_eq!(b, base.hash()),
        r => panic!("expected MissingBase, got {r:?}"),
    }
    // A full snapshot is not an overlay.
    let full_bytes = base.as_bytes().to_vec();
    assert!(matches!(
        Snapshot::overlay_from_bytes(full_bytes, other),
        Err(Error::InvalidInput(_))
    ));
    // Files: the same errors through open / open_overlay.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("o.fms");
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(Snapshot::open(&p), Err(Error::MissingBase { .. })));
    let o = Snapshot::open_overlay(&p, base.clone()).unwrap();
    assert_eq!(o.base_hash(), Some(base.hash()));
}

#[test]
fn overlays_stack_to_the_depth_limit_and_no_further() {
    let mut top = base_of(2);
    for level in 1..=fms::limits::MAX_OVERLAY_DEPTH {
        let mut b = SnapshotBuilder::with_base(&top);
        b.insert("a:0", &article(0, &format!("level {level}")))
            .unwrap();
        b.insert(&format!("l:{level}"), &json!({"level": level}))
            .unwrap();
        let next = Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), top.clone()).unwrap();
        assert_eq!(next.depth(), level);
        next.verify().unwrap();
        top = Arc::new(next);
    }
    assert_eq!(top.len(), 2 + fms::limits::MAX_OVERLAY_DEPTH as usize);
    assert_eq!(
        top.get("a:0")
            .unwrap()
            .get("title")
            .unwrap()
            .to_str()
            .as_deref(),
        Some("level 8")
    );
    let mut b = SnapshotBuilder::with_base(&top);
    match b.insert("a:1", &article(1, "too deep")) {
        Err(Error::Limit { what, limit }) => {
            assert!(what.contains("overlay depth"), "{what}");
            assert_eq!(limit, 8);
        }
        r => panic!("expected a depth limit error, got {r:?}"),
    }
    assert!(matches!(b.to_bytes(), Err(Error::Limit { .. })));
}

#[test]
fn a_corrupted_overlay_never_panics_and_verify_catches_it() {
    let base = base_of(6);
    let mut b = SnapshotBuilder::with_base(&base);
    b.insert("a:0", &article(0, "changed")).unwrap();
    let mut m = article(1, "Title 1");
    m.insert("extra", Value::try_from(json!([1, 2, {"x": "y"}])).unwrap());
    b.insert("a:1", &m).unwrap();
    b.remove("a:2").unwrap();
    b.insert("a:new", &article(7, "new")).unwrap();
    let good = b.to_bytes().unwrap();
    Snapshot::overlay_from_bytes(good.clone(), base.clone())
        .unwrap()
        .verify()
        .unwrap();
    let mut rejected = 0;
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        // Re-checksummed, so the structural checks are what must catch it.
        let bad = common::rechecksum(bad);
        let Ok(snap) = Snapshot::overlay_from_bytes(bad, base.clone()) else {
            rejected += 1;
            continue;
        };
        let verified = snap.verify().is_ok();
        let readable = common::read_everything(&snap);
        if verified {
            // Whatever verify accepts reads completely.
            assert_eq!(readable, snap.len(), "bit {bit}: verified but not readable");
        } else {
            rejected += 1;
        }
    }
    assert!(rejected > 0);
    for cut in 0..good.len() {
        assert!(Snapshot::overlay_from_bytes(good[..cut].to_vec(), base.clone()).is_err());
    }
}

#[test]
fn an_id_removed_below_and_added_back_above_appears_once() {
    let mut b = SnapshotBuilder::new();
    b.insert("x", &json!({"v": 0})).unwrap();
    b.insert("y", &json!({"v": 0})).unwrap();
    let f = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let mut a = SnapshotBuilder::with_base(&f);
    a.remove("x").unwrap();
    let a = Arc::new(Snapshot::overlay_from_bytes(a.to_bytes().unwrap(), f).unwrap());
    let mut b = SnapshotBuilder::with_base(&a);
    b.insert("x", &json!({"v": 2})).unwrap();
    let b = Arc::new(Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), a).unwrap());
    b.verify().unwrap();
    assert_eq!(b.ids().collect::<Vec<_>>(), ["y", "x"]);
    assert_eq!(b.iter().count(), b.len());
    // One level more, changing the re-added id: still once, still at the end.
    let mut c = SnapshotBuilder::with_base(&b);
    c.insert("x", &json!({"v": 3})).unwrap();
    let c = Snapshot::overlay_from_bytes(c.to_bytes().unwrap(), b).unwrap();
    c.verify().unwrap();
    let got: Vec<_> = c
        .iter()
        .map(|(id, r)| (id, r.get("v").unwrap().as_i64().unwrap()))
        .collect();
    assert_eq!(got, [("y", 0), ("x", 3)]);
}

#[test]
fn records_wider_than_the_patch_limit_are_stored_whole() {
    let max = fms::limits::MAX_PATCH_SLOTS;
    let wide = |n: usize, changed: &str| {
        let mut m =
            TupleMap::from_pairs((0..n).map(|i| (format!("f{i:03}"), Value::Int(i as i64))));
        m.insert("f000", changed);
        m
    };
    for (n, patched) in [(max, true), (max + 1, false)] {
        let mut b = SnapshotBuilder::new();
        b.insert("w", &wide(n, "before")).unwrap();
        let base = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
        let mut o = SnapshotBuilder::with_base(&base);
        o.insert("w", &wide(n, "after")).unwrap();
        let (bytes, info) = o.to_bytes_with_info().unwrap();
        let ov = info.overlay.unwrap();
        assert_eq!(
            (ov.patched, ov.replaced),
            (patched as usize, !patched as usize),
            "{n} fields"
        );
        let over = Snapshot::overlay_from_bytes(bytes, base).unwrap();
        over.verify().unwrap();
        assert!(over.get("w").unwrap() == wide(n, "after"));
    }
}

/// Version-1 overlays (made from version-2 ones by `fms::check::overlay_as_v1`: this
/// crate writes none) read as before, alone and inside chains with version-2 levels
/// above and below them, and verify.
#[test]
fn version_1_overlays_read_the_old_way_also_in_mixed_chains() {
    let none = |o: &mut SnapshotBuilder| {
        o.set_compression(fms::Compression::None);
    };
    let mut b = SnapshotBuilder::new();
    for id in ["a", "b", "c", "d", "e"] {
        b.insert(id, &rec(id, 0)).unwrap();
    }
    let l0 = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let owned = |m: &[(&str, TupleMap)]| -> Vec<(String, TupleMap)> {
        m.iter().map(|(i, r)| (i.to_string(), r.clone())).collect()
    };
    // Level 1, version 1: change a, remove b and c, add f.
    let mut o = SnapshotBuilder::with_base(&l0);
    none(&mut o);
    o.insert("a", &rec("a", 1)).unwrap();
    o.remove("b").unwrap();
    o.remove("c").unwrap();
    o.insert("f", &rec("f", 1)).unwrap();
    let v2 = o.to_bytes().unwrap();
    let v1 = fms::check::overlay_as_v1(&v2, &l0).expect("a version-1 form");
    assert_eq!(u16::from_le_bytes([v1[8], v1[9]]), 1);
    let l1 = Arc::new(Snapshot::overlay_from_bytes(v1, l0.clone()).unwrap());
    let l1v2 = Snapshot::overlay_from_bytes(v2, l0.clone()).unwrap();
    assert_eq!(l1.stats().overlay, l1v2.stats().overlay);
    assert_eq!(l1.stats().id_entries, 4);
    assert_eq!(l1.sections().len(), 6);
    let merged1 = [
        ("a", rec("a", 1)),
        ("d", rec("d", 0)),
        ("e", rec("e", 0)),
        ("f", rec("f", 1)),
    ];
    let gone1: Vec<String> = vec!["b".into(), "c".into()];
    check_equivalent(&l1, &owned(&merged1), &gone1);
    check_equivalent(&l1v2, &owned(&merged1), &gone1);
    // Level 2, version 2 over the version-1 level: add b back, change f (home: level 1,
    // whose ordinals start after the root's 5), remove d, add g.
    let mut o = SnapshotBuilder::with_base(&l1);
    none(&mut o);
    o.insert("b", &rec("b", 2)).unwrap();
    o.insert("f", &rec("f", 2)).unwrap();
    o.remove("d").unwrap();
    o.insert("g", &rec("g", 2)).unwrap();
    let v2 = o.to_bytes().unwrap();
    let l2 = Arc::new(Snapshot::overlay_from_bytes(v2.clone(), l1.clone()).unwrap());
    let merged2 = [
        ("a", rec("a", 1)),
        ("e", rec("e", 0)),
        ("f", rec("f", 2)),
        ("b", rec("b", 2)),
        ("g", rec("g", 2)),
    ];
    check_equivalent(&l2, &owned(&merged2), &["c".into(), "d".into()]);
    // The same level as version 1 too, then a version-2 level 3 over two version-1
    // levels: change b (re-added at level 2), remove a, add c back, change e, remove g.
    let l2v1 = Arc::new(
        Snapshot::overlay_from_bytes(fms::check::overlay_as_v1(&v2, &l1).unwrap(), l1.clone())
            .unwrap(),
    );
    check_equivalent(&l2v1, &owned(&merged2), &["c".into(), "d".into()]);
    let merged3 = [
        ("e", rec("e", 3)),
        ("f", rec("f", 2)),
        ("b", rec("b", 3)),
        ("c", rec("c", 3)),
    ];
    let gone3: Vec<String> = ["a", "d", "g"].iter().map(|s| s.to_string()).collect();
    for l2 in [&l2, &l2v1] {
        let mut o = SnapshotBuilder::with_base(l2);
        o.insert("b", &rec("b", 3)).unwrap();
        o.remove("a").unwrap();
        o.insert("c", &rec("c", 3)).unwrap();
        o.insert("e", &rec("e", 3)).unwrap();
        o.remove("g").unwrap();
        let l3 = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l2.clone()).unwrap();
        check_equivalent(&l3, &owned(&merged3), &gone3);
    }
}
