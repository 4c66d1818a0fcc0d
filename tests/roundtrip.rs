//! Round trips: arbitrary value trees -> build -> open -> identical values, through every
//! accessor and through serde; TupleMap <-> serde round trips.

mod common;

use fms::{Snapshot, SnapshotBuilder, TupleMap, Value};
use proptest::prelude::*;

/// Keys from a small alphabet so records share shapes and nested maps share keys.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["title", "slug", "kind", "id", "a", "b", "children", ""]).prop_map(String::from),
        1 => "[a-zé_]{1,12}",
    ]
}

fn leaf(bytes: bool) -> BoxedStrategy<Value> {
    let mut options: Vec<(u32, BoxedStrategy<Value>)> = vec![
        (1, Just(Value::Null).boxed()),
        (1, any::<bool>().prop_map(Value::Bool).boxed()),
        (2, (-1000i64..1000).prop_map(Value::Int).boxed()),
        (1, any::<i64>().prop_map(Value::Int).boxed()),
        (1, prop::num::f64::ANY.prop_map(Value::Float).boxed()),
        (
            1,
            prop::sample::select(vec![0.0, -0.0, 0.5, 1e300, f64::INFINITY])
                .prop_map(Value::Float)
                .boxed(),
        ),
        (3, "\\PC{0,6}".prop_map(Value::Str).boxed()),
        (1, "\\PC{0,80}".prop_map(Value::Str).boxed()),
    ];
    if bytes {
        options.push((
            1,
            prop::collection::vec(any::<u8>(), 0..12)
                .prop_map(Value::Bytes)
                .boxed(),
        ));
    }
    prop::strategy::Union::new_weighted(options).boxed()
}

fn value(bytes: bool) -> impl Strategy<Value = Value> {
    leaf(bytes).prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            map_of(inner).prop_map(|m| Value::Map(Box::new(m))),
        ]
    })
}

fn map_of(v: impl Strategy<Value = Value>) -> impl Strategy<Value = TupleMap> {
    prop::collection::vec((key(), v), 0..8).prop_map(TupleMap::from_pairs)
}

fn records(bytes: bool) -> impl Strategy<Value = Vec<(String, TupleMap)>> {
    prop::collection::vec(("[a-z]{1,3}:[0-9]{1,3}", map_of(value(bytes))), 0..20).prop_map(
        |mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|(id, _)| seen.insert(id.clone()));
            v
        },
    )
}

use common::check_record;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn build_open_read_back(recs in records(true)) {
        let bytes = common::build(&recs);
        let snap = Snapshot::from_bytes(bytes).unwrap();
        snap.verify().unwrap();
        prop_assert_eq!(snap.len(), recs.len());
        prop_assert_eq!(snap.ids().collect::<Vec<_>>(), recs.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>());
        for ((id, m), (sid, rec)) in recs.iter().zip(snap.iter()) {
            prop_assert_eq!(id.as_str(), sid);
            check_record(&snap, rec, m);
            check_record(&snap, snap.get(id).unwrap(), m);
            prop_assert!(snap.contains(id));
        }
        prop_assert!(snap.get("no:such:id").is_none());
        prop_assert!(!snap.contains("no:such:id"));
    }

    #[test]
    fn tuplemap_json_round_trip(m in map_of(value(false))) {
        let json = serde_json::to_string(&m).unwrap();
        let back: TupleMap = serde_json::from_str(&json).unwrap();
        // JSON has no NaN or infinities (they come back as null), and serde_json's default
        // float parser may be one ulp off: compare with serde_json's own reading.
        let expect: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), expect);
        let v = fms::to_map(&m).unwrap();
        prop_assert_eq!(&v, &m);
        let again: TupleMap = fms::from_map(&m).unwrap();
        prop_assert_eq!(&again, &m);
    }

    #[test]
    fn upsert_keeps_position_and_last_value(a in map_of(value(true)), b in map_of(value(true))) {
        let mut builder = SnapshotBuilder::new();
        builder.insert("x", &a).unwrap();
        builder.insert("y", &a).unwrap();
        prop_assert!(builder.upsert("x", &b).unwrap());
        let snap = Snapshot::from_bytes(builder.to_bytes().unwrap()).unwrap();
        snap.verify().unwrap();
        prop_assert_eq!(snap.ids().collect::<Vec<_>>(), vec!["x", "y"]);
        prop_assert!(snap.get("x").unwrap() == b);
        prop_assert!(snap.get("y").unwrap() == a);
    }
}

#[test]
fn varied_records_round_trip_and_share_storage() {
    let recs = common::varied_records(200);
    let bytes = common::build(&recs);
    let snap = Snapshot::from_bytes(bytes).unwrap();
    snap.verify().unwrap();
    for (id, m) in &recs {
        check_record(&snap, snap.get(id).unwrap(), m);
    }
    // Records with the same keys share shapes: 200 records, a handful of key sets.
    assert!(snap.shape_count() <= 8, "{} shapes", snap.shape_count());
}

#[test]
fn structs_round_trip_with_borrowed_strings() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Problem {
        kind: String,
        weight: f32,
    }
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Status {
        Draft,
        Published { at: String },
        Retired(u32),
    }
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Exercise<'a> {
        #[serde(borrow)]
        title: &'a str,
        tags: Vec<String>,
        problems: Vec<Problem>,
        parent: Option<String>,
        status: Status,
        other: Status,
        third: Status,
        #[serde(with = "serde_bytes_shim")]
        blob: Vec<u8>,
        big: u64,
        tuple: (i8, bool),
    }
    mod serde_bytes_shim {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(V)
        }
    }
    let e = Exercise {
        title: "Add fractions",
        tags: vec!["math".into(), "fractions".into()],
        problems: vec![Problem {
            kind: "mc".into(),
            weight: 0.25,
        }],
        parent: None,
        status: Status::Draft,
        other: Status::Published {
            at: "2024-01-01".into(),
        },
        third: Status::Retired(3),
        blob: vec![1, 2, 3],
        big: u32::MAX as u64 * 4,
        tuple: (-3, true),
    };
    let mut b = SnapshotBuilder::new();
    b.insert("exercise:1", &e).unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    let rec = snap.get("exercise:1").unwrap();
    let back: Exercise<'_> = rec.deserialize().unwrap();
    assert_eq!(back, e);
    // The borrowed title points into the snapshot's bytes: zero-copy.
    let range = snap.as_bytes().as_ptr_range();
    assert!(range.contains(&back.title.as_ptr()));
    // And the same through the owned TupleMap.
    let m = fms::to_map(&e).unwrap();
    let back2: Exercise<'_> = fms::from_map(&m).unwrap();
    assert_eq!(back2, e);
}

#[test]
fn values_outside_the_model_are_clear_errors() {
    let mut b = SnapshotBuilder::new();
    let err = b.insert("x", &vec![1, 2]).unwrap_err();
    assert!(matches!(err, fms::Error::InvalidInput(_)), "{err}");
    let err = b
        .insert("x", &serde_json::json!({"n": u64::MAX}))
        .unwrap_err();
    assert!(matches!(err, fms::Error::Value(_)), "{err}");
    let err = b.insert("", &serde_json::json!({})).unwrap_err();
    assert!(matches!(err, fms::Error::InvalidInput(_)), "{err}");
    b.insert("x", &serde_json::json!({"a": 1})).unwrap();
    let err = b.insert("x", &serde_json::json!({"a": 2})).unwrap_err();
    assert!(
        matches!(err, fms::Error::DuplicateId { ref id } if id == "x"),
        "{err}"
    );
    // A failed insert leaves the records as they were.
    assert_eq!(b.len(), 1);
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    assert_eq!(snap.get("x").unwrap().get("a").unwrap().as_i64(), Some(1));
}

#[test]
fn nesting_limit_is_enforced_at_and_past_the_limit() {
    fn nested(levels: usize) -> TupleMap {
        let mut v = Value::Int(1);
        for _ in 0..levels {
            v = Value::List(vec![v]);
        }
        TupleMap::from_pairs([("v", v)])
    }
    let max = fms::limits::MAX_HEIGHT as usize;
    // The record itself is one level: MAX_HEIGHT - 1 nested lists fit exactly.
    let mut b = SnapshotBuilder::new();
    b.insert("ok", &nested(max - 1)).unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.get("ok").unwrap().to_owned().unwrap(), nested(max - 1));
    let err = b.insert("deep", &nested(max)).unwrap_err();
    assert!(matches!(err, fms::Error::Limit { .. }), "{err}");
    // Far past the limit: refused without recursing all the way down.
    let err = b.insert("deeper", &nested(2_000)).unwrap_err();
    assert!(matches!(err, fms::Error::Limit { .. }), "{err}");
}

#[test]
fn walk_cost_counts_string_bytes_at_and_past_the_limit() {
    // One long string shared by many list slots costs its bytes every time it is reached.
    let long = "x".repeat(4000);
    let record =
        |n: usize| TupleMap::from_pairs([("v", Value::List(vec![Value::from(long.as_str()); n]))]);
    let per = 1 + 4000u64;
    let max = fms::limits::MAX_WALK;
    // A file of at least MAX_WALK / WALK_PER_BYTE bytes has the full limit: a filler
    // record of that many unique bytes makes this one.
    let filler = "f".repeat((max / fms::limits::WALK_PER_BYTE) as usize);
    // The record's cost: slot "v" (1 + 1 key byte) + n string slots of 1 + 4000 each.
    let fits = ((max - 2) / per) as usize;
    let mut b = SnapshotBuilder::new();
    b.insert(
        "filler",
        &TupleMap::from_pairs([("f", Value::from(filler.as_str()))]),
    )
    .unwrap();
    b.insert("ok", &record(fits)).unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    snap.verify().unwrap();
    assert_eq!(
        serde_json::to_string(&snap.get("ok").unwrap())
            .unwrap()
            .len(),
        fits * 4003 + 7
    );
    let err = b.insert("too_big", &record(fits + 1)).unwrap_err();
    assert!(
        matches!(err, fms::Error::Limit { limit, .. } if limit == max),
        "{err}"
    );

    // Without the filler the file is small: its walk limit is WALK_PER_BYTE times its
    // size, and the builder refuses to write a record that expands past it.
    let mut b = SnapshotBuilder::new();
    b.insert("ok", &record(fits)).unwrap();
    let err = b.to_bytes().unwrap_err();
    // (At least the string and, per slot, a tag and a 1-byte payload.)
    let small = fms::limits::walk_limit(4000 + 2 * fits as u64);
    assert!(
        matches!(err, fms::Error::Limit { limit, .. } if limit < max && limit >= small),
        "{err}"
    );
    // Within the small file's limit it builds and reads back whole.
    let n = (fms::limits::WALK_FLOOR / per) as usize;
    let mut b = SnapshotBuilder::new();
    b.insert("ok", &record(n)).unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.get("ok").unwrap().to_owned().unwrap(), record(n));
}
