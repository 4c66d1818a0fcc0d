//! `fms build`: JSONL in, snapshot out, atomically. With `--base`, the input is the
//! complete new tree and the output the minimal overlay over the base.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fms::Snapshot;

use crate::CliResult;

#[derive(clap::Args)]
#[command(
    after_help = "With --base: the inputs are the complete new tree, and the output \
stores only what differs from the base: records equal to the base's cost nothing, changed ones \
are stored whole or as their changed fields (whichever is smaller), new ones are added, and the \
base's ids that the inputs lack become tombstones (removed). `fms export --base <base> <out>` \
then gives back the inputs. For an overlay over an overlay, pass every file of the base's chain \
(--base repeated, any order); the new overlay goes over the one that no other given file is \
built on."
)]
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
    #[command(flatten)]
    bases: crate::Bases,
    /// How string values are stored: `none` (plain), `auto` (FSST symbol tables per field,
    /// long fields in the cold section with zstd level 3), or a zstd level 1..=22 for the
    /// cold section (on the content-site corpus 16 gives the smallest files, for about
    /// 1.5× the build time; higher levels gave the same bytes).
    #[arg(long, default_value = "auto", value_parser = parse_compression)]
    compress: fms::Compression,
    /// No progress bar (it is drawn on stderr only when stderr is a terminal; the summary
    /// always goes to stdout).
    #[arg(short, long)]
    quiet: bool,
}

pub(crate) fn parse_compression(s: &str) -> Result<fms::Compression, String> {
    s.parse().map_err(|e: fms::Error| e.to_string())
}

/// Counts the bytes read through it into a progress bar.
struct Counted<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A bar of input bytes read out of `total`, with the rate: drawn on stderr only when it is
/// a terminal (indicatif hides it otherwise) and not `quiet`.
fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    let target = if quiet {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    };
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), target);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:7} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ~{eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message("reading");
    bar
}

/// Reads every input into the builder (the bar counting the bytes), tombstones the base's
/// ids the inputs lack (for an overlay), and writes the output atomically.
fn read_and_write(
    a: &Args,
    mut b: fms::SnapshotBuilder,
    files: Vec<std::fs::File>,
    bar: &indicatif::ProgressBar,
) -> Result<fms::BuildInfo, String> {
    for (input, file) in a.inputs.iter().zip(files) {
        let counted = Counted {
            inner: file,
            bar: bar.clone(),
        };
        let reader = std::io::BufReader::with_capacity(1 << 20, counted);
        b.extend_jsonl(reader, &input.display().to_string(), &a.id_field)
            .map_err(|e| e.to_string())?;
    }
    if b.base().is_some() {
        b.remove_absent()
            .map_err(|e| format!("{}: {e}", a.output.display()))?;
    }
    bar.set_message("writing");
    bar.tick();
    b.write_to_path(&a.output).map_err(|e| match e {
        fms::Error::Io { .. } => e.to_string(),
        e => format!("{}: {e}", a.output.display()),
    })
}

/// The base a new overlay goes over: the tip of the chain the `--base` files form (the
/// one snapshot among them that none of the others is built on).
fn chain_tip(bases: &[PathBuf]) -> Result<Arc<Snapshot>, String> {
    let paths: Vec<&Path> = bases.iter().map(PathBuf::as_path).collect();
    let snaps = crate::open_all_with_bases(&paths, &[])?;
    let below: std::collections::HashSet<fms::ContentHash> =
        snaps.iter().filter_map(|s| s.base_hash()).collect();
    let mut tips: Vec<(&Path, &Arc<Snapshot>)> = Vec::new();
    for (p, s) in paths.iter().zip(&snaps) {
        if !below.contains(&s.hash()) && !tips.iter().any(|(_, t)| t.hash() == s.hash()) {
            tips.push((p, s));
        }
    }
    match tips.as_slice() {
        [(_, tip)] => Ok(Arc::clone(tip)),
        _ => {
            let names: Vec<String> = tips.iter().map(|(p, _)| p.display().to_string()).collect();
            Err(format!(
                "the --base files form {} separate chains (tips: {}); pass only the chain of \
                 the snapshot to build over",
                tips.len(),
                names.join(", ")
            ))
        }
    }
}

pub fn run(a: Args) -> CliResult {
    let start = std::time::Instant::now();
    let base = if a.bases.bases.is_empty() {
        None
    } else {
        Some(chain_tip(&a.bases.bases)?)
    };
    // A base chain already at the depth limit cannot take another overlay: say so before
    // reading any input (the builder would refuse the first record, which reads as if
    // line 1 were at fault).
    if let Some(base) = &base
        && base.depth() >= fms::limits::MAX_OVERLAY_DEPTH
    {
        return Err(format!(
            "the --base chain is already {} overlays deep, the most a chain may stack \
             (fms::limits::MAX_OVERLAY_DEPTH): build a full snapshot of the new tree (no \
             --base), or an overlay over an earlier version",
            base.depth()
        ));
    }
    let mut b = match &base {
        None => fms::SnapshotBuilder::new(),
        Some(base) => fms::SnapshotBuilder::with_base(base),
    };
    b.set_compression(a.compress);
    // Open every input first: a missing one fails before any work.
    let mut files = Vec::with_capacity(a.inputs.len());
    let mut total = 0u64;
    for input in &a.inputs {
        let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
        total += file.metadata().map_or(0, |m| m.len());
        files.push(file);
    }
    let bar = progress_bar(total, a.quiet);
    let result = read_and_write(&a, b, files, &bar);
    bar.finish_and_clear();
    let info = result?;
    match &info.overlay {
        None => say!(
            "{}: {} records, {} shapes, {} keys, {} strings, {} bytes in {:.2?} (hash {})",
            a.output.display(),
            info.records,
            info.shapes,
            info.keys,
            info.strings,
            info.bytes,
            start.elapsed(),
            info.hash
        ),
        Some(o) => {
            say!(
                "{}: overlay over {} (depth {}), {} bytes in {:.2?} (hash {}): {} records in the \
                 merged tree",
                a.output.display(),
                o.base,
                o.depth,
                info.bytes,
                start.elapsed(),
                info.hash,
                info.records
            );
            say!(
                "  stores {} added, {} replaced, {} patched (changed fields only; {} nested maps \
                 too), {} removed; {} unchanged (cost nothing); new: {} shapes, {} keys, {} strings",
                o.added,
                o.replaced,
                o.patched,
                o.nested_patched,
                o.removed,
                o.unchanged,
                info.shapes,
                info.keys,
                info.strings
            );
        }
    }
    Ok(())
}
