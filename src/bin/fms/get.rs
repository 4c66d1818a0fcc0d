//! `fms get`: one record as pretty JSON.

use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// The snapshot file.
    snapshot: PathBuf,
    /// The record id.
    id: String,
    /// Print only this field.
    #[arg(long)]
    field: Option<String>,
    #[command(flatten)]
    bases: crate::Bases,
}

pub fn run(a: Args) -> CliResult {
    let snap = crate::open_with_bases(&a.snapshot, &a.bases.bases)?;
    let rec = snap
        .get(&a.id)
        .ok_or_else(|| format!("{}: no record with id {:?}", a.snapshot.display(), a.id))?;
    let json = match &a.field {
        None => serde_json::to_string_pretty(&rec),
        Some(f) => {
            let v = rec
                .get(f)
                .ok_or_else(|| format!("record {:?} has no field {f:?}", a.id))?;
            serde_json::to_string_pretty(&v)
        }
    };
    println!(
        "{}",
        json.map_err(|e| format!("{}: {e}", a.snapshot.display()))?
    );
    Ok(())
}
