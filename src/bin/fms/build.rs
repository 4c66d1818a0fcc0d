//! `fms build`: JSONL in, snapshot out, atomically.

use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// JSONL input files, read in order.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output snapshot path (written atomically: nothing appears on error).
    #[arg(short, long)]
    output: PathBuf,
    /// The field holding each record's id (removed from the stored fields).
    #[arg(long, default_value = "id")]
    id_field: String,
}

pub fn run(a: Args) -> CliResult {
    let start = std::time::Instant::now();
    let mut b = fms::SnapshotBuilder::new();
    for input in &a.inputs {
        let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        b.extend_jsonl(reader, &input.display().to_string(), &a.id_field)
            .map_err(|e| e.to_string())?;
    }
    let info = b.write_to_path(&a.output).map_err(|e| e.to_string())?;
    println!(
        "{}: {} records, {} shapes, {} keys, {} strings, {} bytes in {:.2?} (hash {})",
        a.output.display(),
        info.records,
        info.shapes,
        info.keys,
        info.strings,
        info.bytes,
        start.elapsed(),
        info.hash
    );
    Ok(())
}
