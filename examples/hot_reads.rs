//! A fixed read workload over one snapshot file, each phase in its own `#[inline(never)]`
//! function so that callgrind can count it alone (instruction counts do not depend on the
//! machine's load, so they compare two versions of the reader exactly):
//!
//! ```sh
//! cargo build --release --example hot_reads
//! valgrind --tool=callgrind --toggle-collect='*hr_get*' target/release/examples/hot_reads en.fms get
//! ```
//!
//! Phases: `get` (80,000 × `snap.get(id)` + `rec.get("title")` + `rec.get_key(title)`),
//! `getkey` (80,000 × `rec.get_key(title)` on records already looked up, as the criterion
//! bench does), `decode` (80,000 × `get_key` + `write_into` a buffer; `FIELD=NAME` reads
//! another field than `title` in these four phases), `eq` (80,000 × `get_key` + `==` with
//! the field's value as a `&str`), `ids` (80,000 id lookups), `serialize` (2,000 records to JSON with serde),
//! `json` (the same with `Record::write_json`), `owned` (2,000 records
//! `to_owned`), `verify` (the whole file). With `BASE=FILE` in the environment the snapshot
//! is opened as an overlay over that base. Without a phase, prints the size of the views
//! and runs each phase once with wall-clock times (noisy on a shared machine).

use std::hint::black_box;

#[inline(never)]
fn hr_get(snap: &fms::Snapshot, ids: &[&str], name: &str, title: fms::Key) -> usize {
    let mut n = 0;
    for i in 0..80_000 {
        let rec = snap.get(ids[i % ids.len()]).unwrap();
        if let Some(v) = rec.get(name) {
            n += v.as_str().map_or(0, |s| s.len());
        }
        if let Some(v) = rec.get_key(title) {
            n += v.as_str().map_or(0, |s| s.len());
        }
    }
    n
}

#[inline(never)]
fn hr_getkey(recs: &[fms::Record<'_>], title: fms::Key) -> usize {
    let mut n = 0;
    for i in 0..80_000 {
        if let Some(v) = recs[i % recs.len()].get_key(title) {
            n += usize::from(v.as_str().is_some());
        }
    }
    n
}

#[inline(never)]
fn hr_decode(recs: &[fms::Record<'_>], field: fms::Key) -> usize {
    let mut n = 0;
    let mut buf = String::new();
    for i in 0..80_000 {
        if let Some(s) = recs[i % recs.len()].get_key(field).and_then(|v| v.as_str()) {
            buf.clear();
            s.write_into(&mut buf).unwrap();
            n += buf.len();
        }
    }
    n
}

#[inline(never)]
fn hr_eq(recs: &[fms::Record<'_>], field: fms::Key, want: &[String]) -> usize {
    (0..80_000)
        .filter(|&i| {
            let j = i % recs.len();
            recs[j]
                .get_key(field)
                .and_then(|v| v.as_str())
                .is_some_and(|s| s == want[j].as_str())
        })
        .count()
}

#[inline(never)]
fn hr_ids(snap: &fms::Snapshot, ids: &[&str]) -> usize {
    (0..80_000)
        .filter(|&i| snap.get(ids[(i * 7) % ids.len()]).is_some())
        .count()
}

#[inline(never)]
fn hr_serialize(snap: &fms::Snapshot, ids: &[&str]) -> usize {
    ids.iter()
        .take(2_000)
        .map(|id| serde_json::to_vec(&snap.get(id).unwrap()).unwrap().len())
        .sum()
}

#[inline(never)]
fn hr_json(snap: &fms::Snapshot, ids: &[&str]) -> usize {
    let mut buf = Vec::new();
    ids.iter()
        .take(2_000)
        .map(|id| {
            buf.clear();
            snap.get(id).unwrap().write_json(&mut buf).unwrap();
            buf.len()
        })
        .sum()
}

#[inline(never)]
fn hr_owned(snap: &fms::Snapshot, ids: &[&str]) -> usize {
    ids.iter()
        .take(2_000)
        .map(|id| snap.get(id).unwrap().to_owned().unwrap().len())
        .sum()
}

#[inline(never)]
fn hr_verify(snap: &fms::Snapshot) -> bool {
    snap.verify().is_ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: hot_reads FILE [get|getkey|eq|decode|ids|serialize|json|owned|verify]");
    let phase = args.next();
    // BASE=FILE: open FILE as an overlay over that base (a locale tree).
    let snap = match std::env::var_os("BASE") {
        Some(base) => {
            let base = std::sync::Arc::new(fms::Snapshot::open(base).unwrap());
            fms::Snapshot::open_overlay(&path, base).unwrap()
        }
        None => fms::Snapshot::open(&path).unwrap(),
    };
    // Spread over the file: every 13th id.
    let ids: Vec<&str> = snap.ids().step_by(13).collect();
    // FIELD=NAME: the field the get, getkey and decode phases read (default title).
    let name = std::env::var("FIELD").unwrap_or_else(|_| "title".into());
    let title = snap.key(&name).unwrap();
    let recs: Vec<fms::Record<'_>> = ids.iter().map(|id| snap.get(id).unwrap()).collect();
    let run = |p: &str| -> String {
        match p {
            "get" => hr_get(&snap, &ids, &name, title).to_string(),
            "decode" => hr_decode(&recs, title).to_string(),
            "getkey" => hr_getkey(&recs, title).to_string(),
            "eq" => {
                // The field's values, decoded once, outside the counted function.
                let want: Vec<String> = recs
                    .iter()
                    .map(|r| {
                        r.get_key(title)
                            .and_then(|v| v.to_str())
                            .map(|s| s.into_owned())
                            .unwrap_or_default()
                    })
                    .collect();
                hr_eq(&recs, title, &want).to_string()
            }
            "ids" => hr_ids(&snap, &ids).to_string(),
            "serialize" => hr_serialize(&snap, &ids).to_string(),
            "json" => hr_json(&snap, &ids).to_string(),
            "owned" => hr_owned(&snap, &ids).to_string(),
            "verify" => hr_verify(&snap).to_string(),
            _ => panic!("unknown phase {p}"),
        }
    };
    match phase {
        Some(p) => println!("{p}: {}", black_box(run(&p))),
        None => {
            println!(
                "size_of::<Record>() = {}, size_of::<List>() = {}, size_of::<ValueRef>() = {}",
                std::mem::size_of::<fms::Record<'_>>(),
                std::mem::size_of::<fms::List<'_>>(),
                std::mem::size_of::<fms::ValueRef<'_>>()
            );
            for p in [
                "get",
                "getkey",
                "eq",
                "decode",
                "ids",
                "serialize",
                "json",
                "owned",
                "verify",
            ] {
                let t = std::time::Instant::now();
                let r = black_box(run(p));
                println!("{p}: {r} in {:?}", t.elapsed());
            }
        }
    }
}
