//! `fms push` and `fms get --memcached` against a real memcached.
#![cfg(all(feature = "remote", feature = "cli"))]

mod support;

use std::process::Command;

fn fms(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fms"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn push_then_get_through_the_tier() {
    let Some(mcs) = support::memcacheds(2) else {
        return;
    };
    let servers = format!("{},{}", mcs[0].addr(), mcs[1].addr());
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 100);
    let d = dir.path().to_str().unwrap();
    let o = fms(&["push", d, "--memcached", &servers]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("pointers flipped"), "{out}");
    assert!(out.contains("es: 100 records"), "{out}");

    let o = fms(&[
        "get",
        "--memcached",
        &servers,
        "--origin",
        d,
        "--locale",
        "es",
        "video:3",
        "es:only",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let remote = String::from_utf8(o.stdout).unwrap();
    let es = dir.path().join("es-v1.fms");
    let en = dir.path().join("en-v1.fms");
    let mut local = String::new();
    for id in ["video:3", "es:only"] {
        let o = fms(&[
            "get",
            es.to_str().unwrap(),
            id,
            "--base",
            en.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        local.push_str(&String::from_utf8(o.stdout).unwrap());
    }
    assert_eq!(remote, local);

    // A missing id: the others are printed, the exit is non-zero and names it.
    let o = fms(&[
        "get",
        "--memcached",
        &servers,
        "--origin",
        d,
        "video:1",
        "video:nope",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("video:nope"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"Video 1\""));

    // A second push ships nothing.
    let o = fms(&["push", d, "--memcached", &servers]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("sent 0 items, 0 bytes"));

    // A hot list that cannot be read is an error naming it; nothing is published.
    let o = fms(&[
        "push",
        d,
        "--memcached",
        &servers,
        "--hot-ids",
        "/no/such/log",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/log"));

    // An update pushed with a hot list: each new version names a hot-set snapshot that
    // holds the most accessed ids of its tree.
    support::write_origin(dir.path(), 2, 100);
    let log = dir.path().join("access.log");
    std::fs::write(&log, "video:3\nvideo:9\nvideo:3\nnope\n").unwrap();
    let o = fms(&[
        "push",
        d,
        "--memcached",
        &servers,
        "--hot-ids",
        log.to_str().unwrap(),
        "--hot",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pointers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("remote/pointers.json")).unwrap())
            .unwrap();
    let en = pointers["locales"]["en"].as_str().unwrap();
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("remote/{en}.json"))).unwrap(),
    )
    .unwrap();
    let hot = info["hot"].as_str().expect("the version names its hot set");
    let snap = fms::Snapshot::open(dir.path().join(format!("remote/{hot}.fms"))).unwrap();
    assert_eq!(snap.ids().collect::<Vec<_>>(), ["video:3", "video:9"]);
}

#[test]
fn demo_remote_serves_through_the_tier() {
    if support::binary("memcached").is_none() {
        return;
    }
    let o = fms(&[
        "demo",
        "--scale",
        "0.02",
        "--locales",
        "2",
        "--seconds",
        "0.5",
        "--threads",
        "2",
        "--remote",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("the memcached tier: 4 memcached servers"),
        "{out}"
    );
    assert!(out.contains("0 corrupt items"), "{out}");
    assert!(out.contains("get_many of 50 ids"), "{out}");
}
