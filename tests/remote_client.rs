//! The meta-protocol client against a real memcached: pipelined batches, leases, CAS,
//! deadlines against a hung server; push refuses records over the item limit.
#![cfg(feature = "remote")]

mod support;

use std::time::{Duration, Instant};

use fms::remote::RemoteError;
use fms::remote::client::{Conn, Op, Reply};
use fms::remote::push::{self, PushOptions};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

#[test]
fn batches_leases_and_cas() {
    let Some(mc) = support::memcached() else {
        return;
    };
    let mut c = Conn::connect(&mc.addr(), Duration::from_secs(1), soon()).unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let vals: Vec<Vec<u8>> = (0..200)
        .map(|i| vec![b'a' + (i % 26) as u8; i * 10])
        .collect();
    let sets: Vec<Op<'_>> = keys
        .iter()
        .zip(&vals)
        .map(|(k, v)| Op::Set {
            key: k,
            value: v,
            ttl: 0,
            cas: None,
            add: false,
            quiet: true,
        })
        .collect();
    assert!(
        c.batch(&sets, soon())
            .unwrap()
            .iter()
            .all(|r| *r == Reply::Done)
    );
    let gets0 = support::stat(&mc.addr(), "cmd_get");
    let mut ops: Vec<Op<'_>> = keys
        .iter()
        .map(|k| Op::Get {
            key: k,
            lease: None,
            quiet: true,
        })
        .collect();
    ops.push(Op::Get {
        key: "absent",
        lease: None,
        quiet: true,
    });
    let replies = c.batch(&ops, soon()).unwrap();
    for (i, r) in replies[..200].iter().enumerate() {
        match r {
            Reply::Value { value, cas, .. } => {
                assert_eq!(value, &vals[i]);
                assert!(cas.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(replies[200], Reply::Miss, "a quiet miss");
    assert_eq!(support::stat(&mc.addr(), "cmd_get") - gets0, 201);

    // Leases: the first miss wins, the second sees the lease taken.
    let lease = [Op::Get {
        key: "cold",
        lease: Some(5),
        quiet: false,
    }];
    match &c.batch(&lease, soon()).unwrap()[0] {
        Reply::Value {
            value, win: true, ..
        } => assert!(value.is_empty()),
        other => panic!("{other:?}"),
    }
    let mut c2 = Conn::connect(&mc.addr(), Duration::from_secs(1), soon()).unwrap();
    match &c2.batch(&lease, soon()).unwrap()[0] {
        Reply::Value {
            win: false,
            lease_taken: true,
            ..
        } => {}
        other => panic!("{other:?}"),
    }

    // CAS: a stale token loses, add on an existing key is not stored.
    let Reply::Value { cas: Some(cas), .. } = c
        .batch(
            &[Op::Get {
                key: "k1",
                lease: None,
                quiet: false,
            }],
            soon(),
        )
        .unwrap()[0]
        .clone()
    else {
        panic!()
    };
    let set = |cas| Op::Set {
        key: "k1",
        value: b"new",
        ttl: 0,
        cas: Some(cas),
        add: false,
        quiet: false,
    };
    assert_eq!(c.batch(&[set(cas)], soon()).unwrap()[0], Reply::Done);
    assert_eq!(c.batch(&[set(cas)], soon()).unwrap()[0], Reply::Exists);
    let add = Op::Set {
        key: "k1",
        value: b"x",
        ttl: 0,
        cas: None,
        add: true,
        quiet: false,
    };
    assert_eq!(c.batch(&[add], soon()).unwrap()[0], Reply::NotStored);
}

#[test]
fn a_hung_server_costs_at_most_the_deadline() {
    let Some(mc) = support::memcached() else {
        return;
    };
    let mut c = Conn::connect(&mc.addr(), Duration::from_secs(1), soon()).unwrap();
    mc.hang();
    let start = Instant::now();
    let r = c.batch(
        &[Op::Get {
            key: "k",
            lease: None,
            quiet: false,
        }],
        Instant::now() + Duration::from_millis(100),
    );
    let took = start.elapsed();
    assert!(matches!(r, Err(RemoteError::Io { .. })), "{r:?}");
    assert!(took < Duration::from_millis(250), "{took:?}");
    mc.signal("CONT");
}

#[test]
fn push_refuses_a_record_over_the_item_limit() {
    let Some(mc) = support::memcached() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 20);
    let cluster = support::cluster(&[mc.addr()], &[]);
    // video:0 has the longest record (its body goes to the cold section, compressed, so
    // its item is 450-480 bytes).
    let opts = PushOptions {
        item_limit: 440,
        ..PushOptions::default()
    };
    let err = push::push(dir.path(), &cluster, &opts).unwrap_err();
    assert!(matches!(err, RemoteError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("video:0"), "{err}");
}
