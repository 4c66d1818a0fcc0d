//! `fms`: build, read, check and demonstrate frozen model store snapshots.
//!
//! Errors go to stderr as one line naming the file and line (JSONL) or byte offset
//! (snapshots), with a non-zero exit; no command ever leaves a partial output file.

mod build;
mod demo;
mod diff;
mod export;
mod generate;
mod get;
mod heap;
mod inspect;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

#[derive(Parser)]
#[command(
    name = "fms",
    version,
    about = "A memory-compact, read-only frozen model store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a snapshot from JSONL files (one JSON object per line).
    Build(build::Args),
    /// Print one record as pretty JSON.
    Get(get::Args),
    /// Write a snapshot back as JSONL (id first), in insertion order.
    Export(export::Args),
    /// Generate the synthetic content-site corpus: one JSONL file per locale.
    Gen(generate::Args),
    /// Where a snapshot's bytes go: sections, shapes, fields, largest records, string pool.
    Inspect(inspect::Args),
    /// Ids added, removed and changed between two snapshots, with the changed fields.
    Diff(diff::Args),
    /// Check a snapshot completely: structure and checksums.
    Verify {
        /// The snapshot file.
        snapshot: PathBuf,
    },
    /// Generate a content-site corpus, build it, serve lookups, print what it used.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(a) => build::run(a),
        Command::Get(a) => get::run(a),
        Command::Export(a) => export::run(a),
        Command::Gen(a) => generate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Verify { snapshot } => verify(&snapshot),
        Command::Demo(a) => demo::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fms: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A CLI error: one line of text, already naming what and where.
pub type CliResult = Result<(), String>;

/// Opens a snapshot, naming the path in any error.
pub fn open(path: &std::path::Path) -> Result<fms::Snapshot, String> {
    fms::Snapshot::open(path).map_err(|e| match e {
        fms::Error::Io { .. } => e.to_string(),
        e => format!("{}: {e}", path.display()),
    })
}

/// Writes a text output at `path` atomically: `fill` writes into a temporary file in the
/// same directory, which is flushed, fsynced and renamed over `path`, so on any error
/// nothing appears there. Created 0644 (umask applies), like the library's snapshots.
pub fn write_atomically(
    path: &std::path::Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<(), String>,
) -> CliResult {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tb = tempfile::Builder::new();
    tb.prefix(".fms-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tb.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = tb
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    fill(&mut w)?;
    w.flush().map_err(io)?;
    drop(w);
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

fn verify(path: &std::path::Path) -> CliResult {
    let snap = open(path)?;
    let start = std::time::Instant::now();
    snap.verify()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "{}: ok ({} records, {} shapes, {} keys, {} bytes, hash {}, verified in {:.1?})",
        path.display(),
        snap.len(),
        snap.shape_count(),
        snap.key_count(),
        snap.as_bytes().len(),
        snap.hash(),
        start.elapsed()
    );
    Ok(())
}
