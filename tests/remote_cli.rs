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
