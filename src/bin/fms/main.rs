//! `fms`: build, read, check and demonstrate frozen model store snapshots.
//!
//! Errors go to stderr as one line naming the file and line (JSONL) or byte offset
//! (snapshots), with a non-zero exit; no command ever leaves a partial output file.

/// `println!` for the CLI's reports: a reader that went away (`fms verify x | head -0`,
/// a closed pipe) is no error — the command still finishes its work, and its exit status
/// says how that went; any other failure to write is said on stderr. Never a panic.
macro_rules! say {
    () => {
        $crate::say(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::say(format_args!($($t)*))
    };
}

mod build;
mod demo;
mod demo_remote;
mod diff;
mod export;
mod generate;
mod get;
mod heap;
mod inspect;
mod push;
mod serve;
mod tier;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use fms::Snapshot;

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
    /// Print records as pretty JSON: one from a snapshot file, or several through the
    /// memcached tier (--memcached, --origin).
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
        #[command(flatten)]
        bases: Bases,
    },
    /// Generate a content-site corpus, build it, serve lookups, print what it used.
    Demo(demo::Args),
    /// Serve a manifest's trees over HTTP (JSON), reloading when the manifest changes.
    Serve(serve::Args),
    /// Publish an origin directory (manifest.json and its snapshots) to memcached: record
    /// items by content hash, record manifests, version pointers flipped with CAS.
    Push(push::Args),
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
        Command::Verify { snapshot, bases } => verify(&snapshot, &bases.bases),
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Push(a) => push::run(a),
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

/// Opens a snapshot, naming the path in any error. An overlay needs its base: this fails
/// for one, with an error that says so and names the base's hash (use [`open_with_bases`]).
pub fn open(path: &Path) -> Result<Arc<Snapshot>, String> {
    open_with_bases(path, &[])
}

/// `--base <file>`: the snapshots an overlay may be read over (repeatable, any order).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Bases {
    /// A base snapshot to read overlays over: repeat it for every file of a stacked
    /// overlay's chain, in any order.
    #[arg(long = "base", value_name = "FILE")]
    pub bases: Vec<PathBuf>,
}

/// Opens the snapshot at `path`; if it is an overlay, over its base chain found among
/// `bases` (in any order; files that it does not need are opened and ignored). Errors
/// name the file: an overlay without its base says which hash it needs and to pass
/// `--base`.
pub fn open_with_bases(path: &Path, bases: &[PathBuf]) -> Result<Arc<Snapshot>, String> {
    let mut all = open_all_with_bases(&[path], bases)?;
    Ok(all.remove(0))
}

/// [`open_with_bases`] for several snapshots sharing one set of bases (mapped once).
/// Returns them in `paths` order.
pub fn open_all_with_bases(
    paths: &[&Path],
    bases: &[PathBuf],
) -> Result<Vec<Arc<Snapshot>>, String> {
    let files: Vec<&Path> = bases
        .iter()
        .map(PathBuf::as_path)
        .chain(paths.iter().copied())
        .collect();
    match fms::Store::new("").load_all(&files) {
        Ok(mut snaps) => Ok(snaps.split_off(bases.len())),
        Err(e) => Err(explain_load_error(&files, bases.len(), e)),
    }
}

/// Turns a failed `load_all` into a CLI message: if an overlay lacks its base among the
/// files, says which file, which hash it needs, what the `--base` files are; otherwise the
/// library's error (which names the file).
fn explain_load_error(files: &[&Path], n_bases: usize, e: fms::Error) -> String {
    let fms::Error::File { path, source } = &e else {
        return e.to_string();
    };
    let fms::Error::MissingBase { base, .. } = **source else {
        return e.to_string();
    };
    let what = if files[..n_bases].contains(&path.as_path()) {
        " (a --base file)"
    } else {
        ""
    };
    if n_bases == 0 {
        return format!(
            "{}{what}: an overlay over {base}: pass that base snapshot with --base <file> \
             (for a stacked overlay, every file of its chain, in any order)",
            path.display()
        );
    }
    // What each --base file is: its content hash (O(1) each: the header only).
    let given: Vec<String> = files[..n_bases]
        .iter()
        .map(|gp| {
            let hash = match Snapshot::open(gp) {
                Ok(s) => s.hash().to_string(),
                Err(e) => match e.root() {
                    fms::Error::MissingBase { overlay, .. } => overlay.to_string(),
                    _ => "unreadable".to_owned(),
                },
            };
            format!("{} is {hash}", gp.display())
        })
        .collect();
    format!(
        "{}{what}: an overlay over {base}, which none of the --base files is ({}); \
         pass the snapshot it was built over with --base <file>",
        path.display(),
        given.join(", ")
    )
}

/// Writes a text output at `path` atomically ([`fms::write_file_atomically`]): on any
/// error nothing appears there. Errors are one line naming the path.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<(), String>,
) -> CliResult {
    fms::write_file_atomically(path, |w| fill(w).map_err(fms::Error::InvalidInput))
        .map_err(|e| e.to_string())
}

fn verify(path: &Path, bases: &[PathBuf]) -> CliResult {
    let snap = open_with_bases(path, bases)?;
    let start = std::time::Instant::now();
    snap.verify()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let chain = match snap.base() {
        None => String::new(),
        Some(b) => format!(
            ", an overlay over {} at depth {}, its chain of {} files checked too",
            b.hash(),
            snap.depth(),
            snap.depth() + 1
        ),
    };
    say!(
        "{}: ok ({} records, {} shapes, {} keys, {} bytes, hash {}{chain}, verified in {:.1?})",
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

/// Writes one line to stdout for [`say!`].
fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("fms: cannot write to stdout: {e}");
        }
    }
}
