//! The ketama ring places keys exactly where twemproxy (`nutcracker`, `hash: md5`,
//! `distribution: ketama`) does: against golden vectors recorded from a real nutcracker
//! (tests/data/ketama_golden.txt), and live against nutcracker in front of real memcached
//! servers.
#![cfg(feature = "remote")]

mod support;

use fms::remote::ketama::{Ring, Server};

/// A twemproxy server line `host:port:weight [name]` as a ring server.
fn parse_server(line: &str) -> Server {
    Server::parse(line).unwrap()
}

fn golden_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    keys.extend((0..1000u64).map(|i| {
        format!(
            "fms2:r:{:014x}",
            xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()) >> 8
        )
    }));
    keys
}

/// Sets every key through nutcracker, then asks each memcached which keys it holds.
/// Returns key -> server index.
fn placement_by_nutcracker(
    proxy: &str,
    servers: &[String],
    keys: &[String],
) -> std::collections::HashMap<String, usize> {
    let mut req = Vec::new();
    for k in keys {
        req.extend_from_slice(format!("set {k} 0 0 1\r\nx\r\n").as_bytes());
    }
    let reply = support::raw_lines(proxy, &req, keys.len());
    assert!(
        reply.iter().all(|l| l == "STORED"),
        "nutcracker did not store everything: {:?}",
        reply.iter().find(|l| *l != "STORED")
    );
    let mut owner = std::collections::HashMap::new();
    for (i, s) in servers.iter().enumerate() {
        let addr = s.split(' ').next().unwrap();
        let addr = addr.rsplit_once(':').unwrap().0;
        for k in support::held_keys(addr, keys) {
            assert!(owner.insert(k.clone(), i).is_none(), "{k} on two servers");
        }
    }
    assert_eq!(owner.len(), keys.len(), "every key landed somewhere");
    owner
}

#[test]
fn golden_vectors_from_nutcracker() {
    let text = include_str!("data/ketama_golden.txt");
    let servers: Vec<Server> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# server: "))
        .map(parse_server)
        .collect();
    assert_eq!(servers.len(), 4);
    let ring = Ring::new(servers);
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, idx) = line.split_once('\t').unwrap();
        let idx: usize = idx.parse().unwrap();
        assert_eq!(ring.locate(key.as_bytes()), Some(idx), "key {key}");
        n += 1;
    }
    assert_eq!(n, 2000);
}

#[test]
fn live_nutcracker_agrees_with_the_ring() {
    let Some(mcs) = support::memcacheds(4) else {
        return;
    };
    // Plain host:port names, a weight, and configured names (which replace host:port in
    // the point strings).
    let lines: Vec<String> = vec![
        format!("{}:1", mcs[0].addr()),
        format!("{}:2", mcs[1].addr()),
        format!("{}:1 alpha", mcs[2].addr()),
        format!("{}:1 beta", mcs[3].addr()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let Some(proxy) = support::nutcracker(dir.path(), &lines) else {
        return;
    };
    let keys = golden_keys();
    let owner = placement_by_nutcracker(&proxy.addr(), &lines, &keys);
    let ring = Ring::new(lines.iter().map(|l| parse_server(l)).collect());
    let mut wrong = 0;
    for k in &keys {
        if ring.locate(k.as_bytes()) != Some(owner[k]) {
            wrong += 1;
        }
    }
    assert_eq!(
        wrong,
        0,
        "{wrong} of {} keys placed differently",
        keys.len()
    );
    // The other way round: keys written by an fms Cluster configured with the same
    // server lines are found by nutcracker.
    let cluster = fms::remote::Cluster::new(fms::remote::ClusterConfig::new(&lines)).unwrap();
    let fresh: Vec<String> = (0..500).map(|i| format!("fms-written:{i}")).collect();
    let ops: Vec<fms::remote::client::Op<'_>> = fresh
        .iter()
        .map(|k| fms::remote::client::Op::Set {
            key: k,
            value: b"v",
            ttl: 0,
            cas: None,
            add: false,
            quiet: true,
        })
        .collect();
    let replies = cluster.run(
        &ops,
        std::time::Instant::now() + std::time::Duration::from_secs(5),
    );
    assert!(
        replies
            .iter()
            .all(|r| *r == Some(fms::remote::client::Reply::Done))
    );
    for k in &fresh {
        let r = support::raw(&proxy.addr(), format!("get {k}\r\n").as_bytes(), b"END\r\n");
        assert!(
            r.starts_with(b"VALUE "),
            "nutcracker does not find {k}, which fms wrote"
        );
    }
    // Each server got a share (the weights are visible).
    let mut counts = [0; 4];
    for i in owner.values() {
        counts[*i] += 1;
    }
    assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
}

/// Regenerates tests/data/ketama_golden.txt from a real nutcracker. Needs the fixed ports
/// 11211, 21212, 21213, 21214 free (11211 exercises the host-only naming rule).
/// `cargo test --release --test remote_ketama -- --ignored regenerate`
#[test]
#[ignore]
fn regenerate_golden_vectors() {
    let mcs: Vec<_> = [11211, 21212, 21213, 21214]
        .into_iter()
        .map(|p| support::memcached_on(Some(p)).expect("memcached"))
        .collect();
    let lines: Vec<String> = vec![
        format!("{}:1", mcs[0].addr()),
        format!("{}:1", mcs[1].addr()),
        format!("{}:2", mcs[2].addr()),
        format!("{}:1 cache-d", mcs[3].addr()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let proxy = support::nutcracker(dir.path(), &lines).expect("nutcracker");
    let keys = golden_keys();
    let owner = placement_by_nutcracker(&proxy.addr(), &lines, &keys);
    let version = std::process::Command::new(support::binary("nutcracker").unwrap())
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            let first = text.lines().next().unwrap_or("").trim();
            first.trim_start_matches("This is ").to_owned()
        })
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str("# Key placement recorded from a real twemproxy: keys set through nutcracker\n");
    out.push_str(&format!(
        "# ({version}; hash: md5, distribution: ketama), then found by asking each\n"
    ));
    out.push_str("# memcached. Regenerate: cargo test --release --test remote_ketama -- --ignored regenerate\n");
    out.push_str(
        "# Format: `# server: <twemproxy server line>` in pool order, then key<TAB>server index.\n",
    );
    for l in &lines {
        out.push_str(&format!("# server: {l}\n"));
    }
    for k in &keys {
        out.push_str(&format!("{k}\t{}\n", owner[k]));
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ketama_golden.txt");
    std::fs::write(path, out).unwrap();
}
