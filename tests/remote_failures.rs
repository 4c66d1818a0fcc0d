//! Failures against real memcached servers: a server killed (SIGKILL) and one hung
//! (SIGSTOP) mid-run, the gutter pool, racing publishers, and the load a request puts on
//! memcached.
#![cfg(feature = "remote")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fms::remote::push::{self, PushOptions};
use fms::remote::{RemoteConfig, RemoteError, RemoteStore};

fn uncached() -> RemoteConfig {
    // No in-process cache: every request goes to memcached.
    RemoteConfig {
        cache_bytes: 1,
        ..RemoteConfig::default()
    }
}

fn ids(from: usize, n: usize, total: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("video:{}", (from + i * 7) % total))
        .collect()
}

#[test]
fn killed_and_hung_servers_every_request_in_time_nothing_wrong() {
    let Some(mcs) = support::memcacheds(5) else {
        return;
    };
    let addrs: Vec<String> = mcs[..4].iter().map(|m| m.addr()).collect();
    let gutter = vec![mcs[4].addr()];
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 300);
    let cluster = support::cluster(&addrs, &gutter);
    push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    let cfg = uncached();
    let deadline = cfg.deadline;
    let store = Arc::new(RemoteStore::new(cluster.clone(), dir.path(), cfg).unwrap());
    let tree = support::local_tree(dir.path(), "es");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop, tree) = (store.clone(), stop.clone(), tree.clone());
            std::thread::spawn(move || {
                let mut worst = Duration::ZERO;
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ids = ids(n * 13 + t, 50, 300);
                    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let start = Instant::now();
                    let got = store.get_many("es", &ids).expect("answered");
                    worst = worst.max(start.elapsed());
                    for (id, r) in ids.iter().zip(got) {
                        let want = tree.get(id).map(|r| serde_json::to_string(&r).unwrap());
                        let have = r.map(|r| serde_json::to_string(&r.record()).unwrap());
                        assert_eq!(have, want, "{id}");
                    }
                    n += 1;
                }
                (n, worst)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    mcs[0].signal("KILL");
    std::thread::sleep(Duration::from_millis(500));
    mcs[1].hang();
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for h in readers {
        let (n, worst) = h.join().unwrap();
        total += n;
        assert!(
            worst <= deadline + Duration::from_millis(150),
            "a request took {worst:?} (deadline {deadline:?})"
        );
    }
    assert!(total > 20, "only {total} requests");
    let p = cluster.primaries();
    assert!(
        p[0].health.downs() >= 1,
        "the killed server was marked down"
    );
    assert!(p[1].health.downs() >= 1, "the hung server was marked down");
    assert!(p[2].health.downs() == 0 && p[3].health.downs() == 0);
    assert!(
        cluster.gutters()[0].round_trips() > 0,
        "down servers' keys went to the gutter"
    );
    mcs[1].signal("CONT");
}

#[test]
fn a_down_servers_keys_go_to_the_gutter_not_to_the_survivors() {
    let Some(mcs) = support::memcacheds(4) else {
        return;
    };
    let addrs: Vec<String> = mcs[..3].iter().map(|m| m.addr()).collect();
    let gutter = vec![mcs[3].addr()];
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 300);
    let cluster = support::cluster(&addrs, &gutter);
    push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    let store = RemoteStore::new(cluster.clone(), dir.path(), uncached()).unwrap();
    let pinned = store.pin("en").unwrap();
    mcs[0].signal("KILL");
    let ring = fms::remote::ketama::Ring::new(
        addrs
            .iter()
            .map(|a| fms::remote::ketama::Server::new(a))
            .collect(),
    );
    let before: Vec<u64> = (1..4)
        .map(|i| support::stat(&mcs[i].addr(), "cmd_get"))
        .collect();
    let mut owned = [0u64; 3];
    for round in 0..5 {
        let ids = ids(round * 50, 50, 300);
        for id in &ids {
            let key = pinned.version().entry(id).unwrap().hash().key();
            owned[ring.locate(key.as_bytes()).unwrap()] += 1;
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let got = store.get_many_in(&pinned, &ids).unwrap();
        assert!(got.iter().all(Option::is_some));
    }
    let after: Vec<u64> = (1..4)
        .map(|i| support::stat(&mcs[i].addr(), "cmd_get"))
        .collect();
    // Survivors saw exactly the gets of their own keys: nothing was rehashed onto them.
    assert_eq!(after[0] - before[0], owned[1]);
    assert_eq!(after[1] - before[1], owned[2]);
    // The gutter got the dead server's keys (after the errors that marked it down).
    assert!(after[2] - before[2] > 0);
    assert!(after[2] - before[2] <= owned[0]);
}

#[test]
fn two_publishers_racing_on_the_pointer_exactly_one_wins() {
    let Some(mcs) = support::memcacheds(2) else {
        return;
    };
    let addrs: Vec<String> = mcs.iter().map(|m| m.addr()).collect();
    let cluster = support::cluster(&addrs, &[]);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for round in 0..2 {
        // Round 0: no pointer yet (both add); round 1: both CAS over the same pointer.
        support::write_origin(a.path(), 1 + 2 * round, 60);
        support::write_origin(b.path(), 2 + 2 * round, 60);
        let pa = push::prepare(a.path(), &cluster, &PushOptions::default()).unwrap();
        let pb = push::prepare(b.path(), &cluster, &PushOptions::default()).unwrap();
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| {
                barrier.wait();
                pa.publish()
            });
            let hb = s.spawn(|| {
                barrier.wait();
                pb.publish()
            });
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert!(ra.is_ok() != rb.is_ok(), "round {round}: exactly one wins");
        let (winner, loser) = if ra.is_ok() { (ra, rb) } else { (rb, ra) };
        let err = loser.unwrap_err();
        assert!(matches!(err, RemoteError::StalePublisher { .. }), "{err}");
        assert!(err.to_string().contains("stale publisher"), "{err}");
        let winner = winner.unwrap();
        for l in &winner.locales {
            match fms::remote::pointer::read(
                &cluster,
                &l.locale,
                Instant::now() + Duration::from_secs(1),
            )
            .unwrap()
            {
                fms::remote::pointer::Read::Found { hash, .. } => assert_eq!(hash, l.manifest),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn memcached_requests_per_served_request_stay_bounded() {
    let Some(support::Tier {
        mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(3, 300, &PushOptions::default())
    else {
        return;
    };
    let store = RemoteStore::new(cluster.clone(), dir.path(), uncached()).unwrap();
    let pinned = store.pin("en").unwrap();
    let gets = || -> u64 { addrs.iter().map(|a| support::stat(a, "cmd_get")).sum() };
    let rt0 = cluster.round_trips();
    let g0 = gets();
    let n = 100;
    for r in 0..n {
        let ids = ids(r * 3, 50, 300);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        store.get_many_in(&pinned, &ids).unwrap();
    }
    let per_request = (gets() - g0) as f64 / n as f64;
    let rt_per_request = (cluster.round_trips() - rt0) as f64 / n as f64;
    assert!(per_request <= 50.0, "{per_request} gets per 50-id request");
    assert!(
        rt_per_request <= 3.0,
        "{rt_per_request} round trips per request (3 servers)"
    );

    // Overloaded (hung) server: requests to it time out and it is marked down; the
    // others see no more gets than before and the client never retries.
    mcs[2].hang();
    let g1: u64 = addrs[..2].iter().map(|a| support::stat(a, "cmd_get")).sum();
    let rt1 = cluster.round_trips();
    let hung_before = cluster.primaries()[2].round_trips();
    let t = Instant::now();
    for r in 0..n {
        let ids = ids(r * 5, 50, 300);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let got = store.get_many_in(&pinned, &ids).unwrap();
        assert!(got.iter().all(Option::is_some));
    }
    let g2: u64 = addrs[..2].iter().map(|a| support::stat(a, "cmd_get")).sum();
    assert!((g2 - g1) as f64 / n as f64 <= 50.0);
    let rt = (cluster.round_trips() - rt1) as f64 / n as f64;
    // At most one batch per server, plus one write-back batch per server for what the
    // origin filled.
    assert!(rt <= 2.0 * 2.0 + 0.1, "{rt} round trips per request");
    // K = 2 errors mark it down for 2 s; after that, one probe per down period.
    let probes = (t.elapsed().as_secs_f64() / 2.0).ceil() as u64;
    let hung = cluster.primaries()[2].round_trips() - hung_before;
    assert!(
        hung <= 2 + probes,
        "{hung} batches sent to the hung server (down after 2 errors)"
    );
    mcs[2].signal("CONT");
}
