//! `fms diff`: which ids two snapshots add, remove and change, and for each changed record
//! which fields. Records compare as dicts (field order is ignored), values deeply.

use std::io::Write;
use std::path::{Path, PathBuf};

use fms::{Record, Snapshot, ValueRef};
use serde::Serialize;

use crate::CliResult;

#[derive(clap::Args)]
#[command(
    after_help = "Output: a summary line with the counts, then `~ id: changed, fields (+added, -removed)` \
for each changed record, `+ id` for each added one and `- id` for each removed one. Records \
compare as dicts (field order is ignored); values compare deeply (1 and 1.0 differ).\n\n\
Exit status: 0 whether or not the snapshots differ (non-zero only on an error); scripts \
can read the counts from `--summary --json`.\n\n\
Overlays: --base names the snapshots either side may be read over (one set for both); `a` and \
`b` may also be each other's base, e.g. `fms diff en.fms es.fms` for a locale overlay es.fms over \
en.fms."
)]
pub struct Args {
    /// The old snapshot.
    a: PathBuf,
    /// The new snapshot.
    b: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Print only the counts.
    #[arg(long)]
    summary: bool,
    // One set of bases for both sides (see after_help).
    #[command(flatten)]
    bases: crate::Bases,
}

#[derive(Serialize, Default)]
struct Counts {
    added: u64,
    removed: u64,
    changed: u64,
    unchanged: u64,
}

#[derive(Serialize)]
struct Changed<'a> {
    id: &'a str,
    /// Fields in both records with different values, in the old record's field order.
    changed: Vec<&'a str>,
    /// Fields only the new record has, in its field order.
    added: Vec<&'a str>,
    /// Fields only the old record has, in its field order.
    removed: Vec<&'a str>,
}

#[derive(Serialize)]
struct Diff<'a> {
    a: String,
    b: String,
    counts: Counts,
    /// Changed records, in the old snapshot's order.
    changed: Vec<Changed<'a>>,
    /// Ids only the new snapshot has, in its order.
    added: Vec<&'a str>,
    /// Ids only the old snapshot has, in its order.
    removed: Vec<&'a str>,
}

pub fn run(a: Args) -> CliResult {
    let snaps = crate::open_all_with_bases(&[&a.a, &a.b], &a.bases.bases)?;
    let (sa, sb) = (&snaps[0], &snaps[1]);
    check_ids(sa, &a.a)?;
    check_ids(sb, &a.b)?;
    let d = diff(sa, &a.a, sb, &a.b)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if a.json {
        let r = if a.summary {
            serde_json::to_writer_pretty(&mut out, &d.counts)
        } else {
            serde_json::to_writer_pretty(&mut out, &d)
        };
        r.map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush())
    } else {
        print_text(&mut out, &d, a.summary)
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()), // a closed pipe (`fms diff ... | head`) is not an error
    }
}

fn print_text(out: &mut dyn Write, d: &Diff<'_>, summary: bool) -> std::io::Result<()> {
    let c = &d.counts;
    writeln!(
        out,
        "{} -> {}: {} added, {} removed, {} changed, {} unchanged",
        d.a, d.b, c.added, c.removed, c.changed, c.unchanged
    )?;
    if summary {
        return out.flush();
    }
    for ch in &d.changed {
        let mut extra: Vec<String> = ch.added.iter().map(|f| format!("+{}", show(f))).collect();
        extra.extend(ch.removed.iter().map(|f| format!("-{}", show(f))));
        let changed: Vec<String> = ch.changed.iter().map(|f| show(f)).collect();
        let line = match (changed.is_empty(), extra.is_empty()) {
            (false, false) => format!("{} ({})", changed.join(", "), extra.join(", ")),
            (false, true) => changed.join(", "),
            (true, _) => format!("({})", extra.join(", ")),
        };
        writeln!(out, "~ {}: {line}", show(ch.id))?;
    }
    for id in &d.added {
        writeln!(out, "+ {}", show(id))?;
    }
    for id in &d.removed {
        writeln!(out, "- {}", show(id))?;
    }
    out.flush()
}

/// Refuses a file whose id index has unreadable entries (they would look removed).
fn check_ids(snap: &Snapshot, path: &Path) -> CliResult {
    if snap.ids().count() != snap.len() {
        return Err(format!(
            "{}: unreadable id entries; run `fms verify`",
            path.display()
        ));
    }
    Ok(())
}

fn diff<'a>(sa: &'a Snapshot, pa: &Path, sb: &'a Snapshot, pb: &Path) -> Result<Diff<'a>, String> {
    let mut d = Diff {
        a: pa.display().to_string(),
        b: pb.display().to_string(),
        counts: Counts::default(),
        changed: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
    };
    let same_file = sa.hash() == sb.hash();
    for id in sa.ids() {
        let ra = sa.get(id).ok_or_else(|| {
            format!(
                "{}: record {id:?} is unreadable; run `fms verify`",
                pa.display()
            )
        })?;
        if !sb.contains(id) {
            d.removed.push(id);
            continue;
        }
        if same_file {
            d.counts.unchanged += 1;
            continue;
        }
        let rb = sb.get(id).ok_or_else(|| {
            format!(
                "{}: record {id:?} is unreadable; run `fms verify`",
                pb.display()
            )
        })?;
        let over = |_| {
            format!(
                "record {id:?} exceeds the walk limit in {} or {}; run `fms verify`",
                pa.display(),
                pb.display()
            )
        };
        let mut budget = Budget(2 * fms::limits::MAX_WALK);
        let mut ch = Changed {
            id,
            changed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
        };
        for (k, va) in ra.iter() {
            budget.spend(k.len()).map_err(over)?;
            match rb.get(k) {
                None => ch.removed.push(k),
                Some(vb) => {
                    if !eq(va, vb, &mut budget).map_err(over)? {
                        ch.changed.push(k);
                    }
                }
            }
        }
        for k in rb.keys() {
            if !ra.contains_key(k) {
                ch.added.push(k);
            }
        }
        if ch.changed.is_empty() && ch.added.is_empty() && ch.removed.is_empty() {
            d.counts.unchanged += 1;
        } else {
            d.changed.push(ch);
        }
    }
    for id in sb.ids() {
        if !sa.contains(id) {
            d.added.push(id);
        }
    }
    d.counts.added = d.added.len() as u64;
    d.counts.removed = d.removed.len() as u64;
    d.counts.changed = d.changed.len() as u64;
    Ok(d)
}

/// The format's walk budget (FORMAT.md), for both sides of a comparison: a crafted file of
/// shared references cannot make the comparison run away.
struct Budget(u64);
struct OverBudget;

impl Budget {
    fn spend(&mut self, n: usize) -> Result<(), OverBudget> {
        self.0 = self.0.checked_sub(n as u64).ok_or(OverBudget)?;
        Ok(())
    }
}

/// Deep equality of two values from (possibly) different snapshots. Maps compare as dicts;
/// an integer never equals a float; NaN equals NaN (as `fms::Value`'s `PartialEq`).
fn eq(a: ValueRef<'_>, b: ValueRef<'_>, budget: &mut Budget) -> Result<bool, OverBudget> {
    budget.spend(2)?;
    Ok(match (a, b) {
        (ValueRef::Null, ValueRef::Null) => true,
        (ValueRef::Bool(x), ValueRef::Bool(y)) => x == y,
        (ValueRef::Int(x), ValueRef::Int(y)) => x == y,
        (ValueRef::Float(x), ValueRef::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (ValueRef::Str(x), ValueRef::Str(y)) => {
            budget.spend(x.len())?;
            x == y
        }
        (ValueRef::Bytes(x), ValueRef::Bytes(y)) => {
            budget.spend(x.len())?;
            x == y
        }
        (ValueRef::List(x), ValueRef::List(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for i in 0..x.len() {
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => {
                        if !eq(p, q, budget)? {
                            return Ok(false);
                        }
                    }
                    // An unreadable element (corrupt file) on either side: not equal.
                    _ => return Ok(false),
                }
            }
            true
        }
        (ValueRef::Map(x), ValueRef::Map(y)) => maps_eq(x, y, budget)?,
        _ => false,
    })
}

fn maps_eq(a: Record<'_>, b: Record<'_>, budget: &mut Budget) -> Result<bool, OverBudget> {
    if a.len() != b.len() {
        return Ok(false);
    }
    let mut seen = 0;
    for (k, va) in a.iter() {
        budget.spend(k.len())?;
        seen += 1;
        match b.get(k) {
            Some(vb) if eq(va, vb, budget)? => {}
            _ => return Ok(false),
        }
    }
    // Every field of `a` readable (same length, distinct names): `b` has no others.
    Ok(seen == a.len())
}

/// An id or field name for one line of text: quoted if it is empty or has spaces or
/// control characters.
fn show(s: &str) -> String {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}
