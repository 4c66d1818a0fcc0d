//! What producing a record's JSON costs, without HTTP: every record of a locale's tree
//! written straight from the snapshot with `Record::write_json` (what `fms::http` does
//! per record) and with `serde_json::to_writer`, and from the same record as a
//! `serde_json::Value` (what a `HashMap<String, Value>` server does). The CPU-only part of BENCHMARKS.md "HTTP under
//! load".
//!
//! ```sh
//! cargo run --release --example serialize_json -- DIR/manifest.json en es
//! ORDER=random cargo run --release --example serialize_json -- DIR/manifest.json en
//! ```
//!
//! `ORDER=random` writes the records in a fixed shuffled order (what a server's random
//! GETs see: no two neighbours in a row) instead of id order.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let manifest = args
        .next()
        .ok_or("usage: serialize_json MANIFEST LOCALE...")?;
    let store = fms::Store::open_manifest(&manifest)?;
    for locale in args {
        let tree = store.current_exact(&locale).ok_or("no such locale")?;
        let mut ids: Vec<String> = tree.ids().map(str::to_owned).collect();
        if std::env::var("ORDER").as_deref() == Ok("random") {
            // Fisher-Yates with a fixed LCG: the same order every run.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for i in (1..ids.len()).rev() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ids.swap(i, (x >> 33) as usize % (i + 1));
            }
        }
        let values: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| serde_json::to_value(tree.get(id).unwrap()))
            .collect::<Result<_, _>>()?;
        let mut buf = Vec::with_capacity(1 << 20);
        for round in 1..=3 {
            let t = Instant::now();
            let mut bytes = 0;
            for id in &ids {
                buf.clear();
                serde_json::to_writer(&mut buf, &tree.get(id).ok_or("vanished")?)?;
                bytes += buf.len();
            }
            let serde = t.elapsed().as_secs_f64();
            let t = Instant::now();
            for id in &ids {
                buf.clear();
                tree.get(id).ok_or("vanished")?.write_json(&mut buf)?;
            }
            let direct = t.elapsed().as_secs_f64();
            let t = Instant::now();
            for v in &values {
                buf.clear();
                serde_json::to_writer(&mut buf, v)?;
            }
            let peer = t.elapsed().as_secs_f64();
            let ns = |s: f64| s * 1e9 / ids.len() as f64;
            println!(
                "{locale} round {round}: {} records, {:.1} MB of JSON; ns/record: fms write_json {:.0}, \
                 fms serde {:.0}, Value serde {:.0}; fms / Value: write_json {:.2}x, serde {:.2}x",
                ids.len(),
                bytes as f64 / 1e6,
                ns(direct),
                ns(serde),
                ns(peer),
                direct / peer,
                serde / peer
            );
        }
    }
    Ok(())
}
