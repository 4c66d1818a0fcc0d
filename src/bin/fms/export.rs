//! `fms export`: a snapshot back to JSONL, one record per line with its id first, in
//! insertion order (an overlay, read over its `--base`: its base's order, then the ids it
//! adds). `fms build` on the output gives back the same snapshot; for an overlay, the
//! complete tree that `fms build --base` was given.

use std::io::Write;
use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// The snapshot file.
    snapshot: PathBuf,
    /// Write here (atomically) instead of to standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The field name to put each record's id under.
    #[arg(long, default_value = "id")]
    id_field: String,
    #[command(flatten)]
    bases: crate::Bases,
}

fn write_all(snap: &fms::Snapshot, id_field: &str, out: &mut dyn Write) -> Result<(), String> {
    for (id, rec) in snap.iter() {
        let line = fms::corpus::jsonl_line_as(id_field, id, &rec)
            .map_err(|e| format!("record {id:?}: {e}"))?;
        writeln!(out, "{line}").map_err(|e| format!("write: {e}"))?;
    }
    out.flush().map_err(|e| format!("write: {e}"))
}

pub fn run(a: Args) -> CliResult {
    let snap = crate::open_with_bases(&a.snapshot, &a.bases.bases)?;
    if snap.ids().count() != snap.len() {
        return Err(format!(
            "{}: unreadable id entries; run `fms verify`",
            a.snapshot.display()
        ));
    }
    match &a.output {
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            write_all(&snap, &a.id_field, &mut w)
                .map_err(|e| format!("{}: {e}", a.snapshot.display()))
        }
        Some(path) => crate::write_atomically(path, |w| {
            write_all(&snap, &a.id_field, w).map_err(|e| format!("{}: {e}", a.snapshot.display()))
        }),
    }
}
