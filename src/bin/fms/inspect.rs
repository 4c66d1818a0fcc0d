//! `fms inspect`: where a snapshot's bytes go, to find what to slim.
//!
//! Reports the sections (from the header's section table), the record shapes (key lists)
//! by records and by bytes, the top-level fields by the bytes of their values, the largest
//! records, and the string pool: how much of it the values use, and how much the builder's
//! deduplication saves. One pass over the records; memory is proportional to the distinct
//! strings, shapes and field names, never to the number of records.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use fms::ValueRef;
use fms::limits::{MAX_WALK, STR_INLINE_MAX};
use serde::Serialize;

use crate::CliResult;

#[derive(clap::Args)]
#[command(
    after_help = "Byte measures: `json` is the compact JSON of records without their ids (what \
`fms export` writes); `strings` is the summed length of the string and byte-string values, nested \
ones included, counted per reference. Sections come from the header's section table and add up \
to the file size. Memory use is proportional to the distinct strings, not to the records.\n\n\
An overlay (read over its --base files): the sections, and the string pool's entries, are the \
overlay file's own; the `overlay` part says what it stores relative to its base; the record, \
shape, field and value-string figures are over the merged tree, as a reader sees it."
)]
pub struct Args {
    /// The snapshot file.
    snapshot: PathBuf,
    /// Print one JSON object (the same information) instead of text.
    #[arg(long)]
    json: bool,
    /// How many shapes, fields and records to list in each ranking.
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    bases: crate::Bases,
}

pub fn run(a: Args) -> CliResult {
    let snap = crate::open_with_bases(&a.snapshot, &a.bases.bases)?;
    let report =
        analyse(&snap, &a.snapshot, a.top).map_err(|e| format!("{}: {e}", a.snapshot.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if a.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush())
    } else {
        print_text(&mut out, &report)
    };
    stdout_result(written)
}

/// A closed pipe (`fms inspect ... | head`) is not an error; any other write failure is.
fn stdout_result(r: std::io::Result<()>) -> CliResult {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// Everything `inspect` reports; `--json` prints it as is.
#[derive(Serialize)]
struct Report<'a> {
    file: String,
    bytes: u64,
    hash: String,
    /// The header and section table first, then each section in file order; the `bytes`
    /// add up to the file size.
    sections: Vec<SectionRow>,
    /// For an overlay: its base and what it stores relative to it (`null` otherwise).
    overlay: Option<OverlayRow>,
    /// Records in the id index.
    records: u64,
    /// Records that could be read (fewer only in a corrupt file).
    records_read: u64,
    /// Shapes in the file (record shapes and nested-map shapes).
    shapes: u64,
    /// Distinct key names in the file.
    keys: u64,
    /// Distinct shapes of top-level records.
    record_shapes: u64,
    /// What the byte measures below mean.
    measures: Measures,
    shapes_by_records: Vec<ShapeRow<'a>>,
    shapes_by_bytes: Vec<ShapeRow<'a>>,
    fields_by_string_bytes: Vec<FieldRow<'a>>,
    largest_records: Vec<RecordRow<'a>>,
    pool: PoolStats,
}

#[derive(Serialize)]
struct Measures {
    json_bytes: &'static str,
    string_bytes: &'static str,
}

const JSON_BYTES: &str =
    "compact JSON of the value (records: without the id), as fms export writes it";
const STRING_BYTES: &str = "sum of the lengths of the string and byte-string values inside, nested ones included, counted per reference";

#[derive(Serialize)]
struct SectionRow {
    name: &'static str,
    offset: u64,
    bytes: u64,
    percent: f64,
}

/// What an overlay file stores relative to its base, from its id index and OVERLAY section.
#[derive(Serialize)]
struct OverlayRow {
    /// The base's content hash.
    base: String,
    /// 1 for an overlay over a full snapshot, +1 per overlay below.
    depth: u32,
    /// Bytes of the files below it (its base chain).
    base_bytes: u64,
    /// Ids this file stores something for: added + replaced + patched + removed (the
    /// added ones in its id index, the others in CHANGES).
    entries: u64,
    /// Records the base lacks.
    added: u64,
    /// Base records this file replaces whole.
    replaced: u64,
    /// Base records this file replaces by their changed fields only (patch nodes).
    patched: u64,
    /// Nested maps of changed records stored as patches of the base's maps (format
    /// version 5).
    nested_patched: u64,
    /// Base records this file removes (tombstones).
    removed: u64,
    /// Base records the merged tree reads unchanged (they cost this file nothing).
    unchanged: u64,
}

#[derive(Serialize, Clone)]
struct ShapeRow<'a> {
    /// `S1`, `S2`, ...: rank by records (then nested uses), the same label in both lists.
    label: String,
    keys: Vec<&'a str>,
    /// Top-level records with this shape.
    records: u64,
    /// Nested maps (inside records) with this shape, counted per reference.
    nested: u64,
    /// Of the records with this shape (nested uses not included).
    json_bytes: u64,
    string_bytes: u64,
}

#[derive(Serialize)]
struct FieldRow<'a> {
    name: &'a str,
    /// Records having this top-level field.
    records: u64,
    string_bytes: u64,
    json_bytes: u64,
}

#[derive(Serialize)]
struct RecordRow<'a> {
    id: &'a str,
    fields: u64,
    json_bytes: u64,
    string_bytes: u64,
}

/// The POOL section, and what the records' values make of it.
#[derive(Serialize, Default)]
struct PoolStats {
    /// The section's bytes: entries' contents plus their varint length prefixes.
    bytes: u64,
    entries: u64,
    content_bytes: u64,
    prefix_bytes: u64,
    /// Distinct string (over 4 bytes) and byte-string values: each one pool entry.
    value_strings: u64,
    value_string_bytes: u64,
    /// References to them from all values of all records.
    value_references: u64,
    /// What those references would take if each had its own copy.
    referenced_bytes: u64,
    /// `referenced_bytes - value_string_bytes`: what deduplication saves.
    saved_bytes: u64,
    /// Values referenced exactly once.
    once_strings: u64,
    once_bytes: u64,
    /// Values referenced more than once, and how many references they have.
    shared_strings: u64,
    shared_bytes: u64,
    shared_references: u64,
    /// Strings of at most 4 bytes, stored in their slot, not in the pool.
    inline_strings: u64,
    /// References to longer strings by how they are stored: plain, FSST-coded, cold,
    /// derived from other strings (format version 4).
    plain_references: u64,
    fsst_references: u64,
    cold_references: u64,
    derived_references: u64,
    /// Ids whose entry no value shares (content bytes).
    id_only_strings: u64,
    id_only_bytes: u64,
    /// Key names whose entry no value or id shares (content bytes).
    key_only_strings: u64,
    key_only_bytes: u64,
    /// Content bytes of everything else: 8-byte numbers and unreferenced entries. `null`
    /// for an overlay, whose merged tree's strings are spread over its chain's pools.
    other_bytes: Option<u64>,
}

#[derive(Default)]
struct ShapeAcc {
    records: u64,
    nested: u64,
    json_bytes: u64,
    string_bytes: u64,
}

#[derive(Default)]
struct FieldAcc {
    records: u64,
    string_bytes: u64,
    json_bytes: u64,
}

/// Walks values, counting pool references and nested shapes, with the format's walk
/// budget so that a crafted file of shared references cannot make it run away.
struct Walker<'a> {
    /// Distinct string and byte values (decoded: a compressed string counts by its text).
    pooled: HashMap<std::borrow::Cow<'a, [u8]>, u32>,
    inline: u64,
    /// References by stored form: plain, FSST, cold, derived.
    forms: [u64; 4],
    shapes: HashMap<Vec<&'a str>, ShapeAcc>,
    keybuf: Vec<&'a str>,
    budget: u64,
}

struct OverBudget;

impl<'a> Walker<'a> {
    fn spend(&mut self, n: usize) -> Result<(), OverBudget> {
        self.budget = self.budget.checked_sub(n as u64).ok_or(OverBudget)?;
        Ok(())
    }

    fn shape(&mut self, keys: impl Iterator<Item = &'a str>) -> &mut ShapeAcc {
        self.keybuf.clear();
        self.keybuf.extend(keys);
        if !self.shapes.contains_key(&self.keybuf[..]) {
            self.shapes.insert(self.keybuf.clone(), ShapeAcc::default());
        }
        self.shapes
            .get_mut(&self.keybuf[..])
            .expect("just inserted")
    }

    /// Visits one value (a slot: costs 1 plus its string bytes); returns its string bytes.
    fn value(&mut self, v: ValueRef<'a>) -> Result<u64, OverBudget> {
        self.spend(1)?;
        match v {
            ValueRef::Str(s) => {
                self.spend(s.len())?;
                if s.len() <= STR_INLINE_MAX {
                    self.inline += 1;
                } else {
                    let form = if s.is_derived() {
                        3
                    } else if s.is_cold() {
                        2
                    } else {
                        usize::from(s.is_compressed())
                    };
                    self.forms[form] += 1;
                    let text = match s.as_plain() {
                        Some(p) => std::borrow::Cow::Borrowed(p.as_bytes()),
                        None => std::borrow::Cow::Owned(
                            s.to_cow()
                                .map_err(|_| OverBudget)?
                                .into_owned()
                                .into_bytes(),
                        ),
                    };
                    *self.pooled.entry(text).or_insert(0) += 1;
                }
                Ok(s.len() as u64)
            }
            ValueRef::Bytes(b) => {
                self.spend(b.len())?;
                *self
                    .pooled
                    .entry(std::borrow::Cow::Borrowed(b))
                    .or_insert(0) += 1;
                Ok(b.len() as u64)
            }
            ValueRef::List(l) => {
                let mut total = 0;
                for x in l.iter() {
                    total += self.value(x)?;
                }
                Ok(total)
            }
            ValueRef::Map(m) => {
                self.shape(m.keys()).nested += 1;
                let mut total = 0;
                for (k, x) in m.iter() {
                    self.spend(k.len())?;
                    total += self.value(x)?;
                }
                Ok(total)
            }
            _ => Ok(0),
        }
    }
}

/// A record in the ranking of the largest: (json bytes, id with ties to the smaller,
/// string bytes, fields).
type Ranked<'a> = (u64, Reverse<&'a str>, u64, u64);

/// Counts bytes written to it.
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_len<T: Serialize + ?Sized>(v: &T) -> Result<u64, serde_json::Error> {
    let mut c = Count(0);
    serde_json::to_writer(&mut c, v)?;
    Ok(c.0)
}

/// The header plus section table as one row, then the sections ([`fms::Stats`]).
fn section_rows(stats: &fms::Stats) -> Vec<SectionRow> {
    let pct = |n: u64| percent(n, stats.bytes);
    let mut rows = vec![SectionRow {
        name: "header",
        offset: 0,
        bytes: stats.header_bytes,
        percent: pct(stats.header_bytes),
    }];
    rows.extend(stats.sections.iter().map(|s| SectionRow {
        name: s.name,
        offset: s.offset,
        bytes: s.len,
        percent: pct(s.len),
    }));
    rows
}

/// What an overlay stores ([`fms::Stats::overlay`]), with the bytes of its base chain.
fn overlay_row(snap: &fms::Snapshot, stats: &fms::Stats) -> Option<OverlayRow> {
    let o = stats.overlay.as_ref()?;
    let mut base_bytes = 0;
    let mut below = snap.base();
    while let Some(s) = below {
        base_bytes += s.as_bytes().len() as u64;
        below = s.base();
    }
    Some(OverlayRow {
        base: o.base.to_string(),
        depth: o.depth,
        base_bytes,
        // What it stores per id, wherever (IDS or, for changes, CHANGES).
        entries: (o.added + o.replaced + o.patched + o.removed) as u64,
        added: o.added as u64,
        replaced: o.replaced as u64,
        patched: o.patched as u64,
        nested_patched: o.nested_patched as u64,
        removed: o.removed as u64,
        unchanged: o.unchanged as u64,
    })
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10000.0 / whole as f64).round() / 100.0
}

fn analyse<'a>(snap: &'a fms::Snapshot, path: &Path, top: usize) -> Result<Report<'a>, String> {
    let bytes = snap.as_bytes();
    let stats = snap.stats();
    let sections = section_rows(&stats);
    let overlay = overlay_row(snap, &stats);

    let mut w = Walker {
        pooled: HashMap::new(),
        inline: 0,
        forms: [0; 4],
        shapes: HashMap::new(),
        keybuf: Vec::new(),
        budget: 0,
    };
    let mut fields: HashMap<&'a str, FieldAcc> = HashMap::new();
    // Min-heap of the `top` largest records: (json bytes, id) with ties to the smaller id.
    let mut largest: BinaryHeap<Reverse<Ranked<'a>>> = BinaryHeap::new();
    let mut records_read = 0u64;
    for (id, rec) in snap.iter() {
        records_read += 1;
        w.budget = MAX_WALK;
        let over = |_| format!("record {id:?} exceeds the walk limit; run `fms verify`");
        let json_err = |e: serde_json::Error| format!("record {id:?}: {e}");
        let (mut rec_json, mut rec_str, mut n) = (2u64, 0u64, 0u64);
        for (k, v) in rec.iter() {
            w.spend(k.len()).map_err(over)?;
            let s = w.value(v).map_err(over)?;
            // The walk above bounded the value, so serializing it is bounded too.
            let j = json_len(&v).map_err(json_err)?;
            rec_json += json_len(k).map_err(json_err)? + 1 + j + u64::from(n > 0);
            rec_str += s;
            n += 1;
            let f = fields.entry(k).or_default();
            f.records += 1;
            f.string_bytes += s;
            f.json_bytes += j;
        }
        let sh = w.shape(rec.keys());
        sh.records += 1;
        sh.json_bytes += rec_json;
        sh.string_bytes += rec_str;
        if top > 0 {
            largest.push(Reverse((rec_json, Reverse(id), rec_str, n)));
            if largest.len() > top {
                largest.pop();
            }
        }
    }

    // Shapes, labelled by rank in records (then nested uses, bytes, keys).
    let mut shapes: Vec<ShapeRow<'a>> = w
        .shapes
        .iter()
        .map(|(keys, s)| ShapeRow {
            label: String::new(),
            keys: keys.clone(),
            records: s.records,
            nested: s.nested,
            json_bytes: s.json_bytes,
            string_bytes: s.string_bytes,
        })
        .collect();
    shapes.sort_by(|a, b| {
        (b.records, b.nested, b.json_bytes)
            .cmp(&(a.records, a.nested, a.json_bytes))
            .then_with(|| a.keys.cmp(&b.keys))
    });
    for (i, s) in shapes.iter_mut().enumerate() {
        s.label = format!("S{}", i + 1);
    }
    let record_shapes = shapes.iter().filter(|s| s.records > 0).count() as u64;
    let mut by_bytes: Vec<ShapeRow<'a>> =
        shapes.iter().filter(|s| s.records > 0).cloned().collect();
    by_bytes.sort_by(|a, b| b.json_bytes.cmp(&a.json_bytes).then(a.label.cmp(&b.label)));
    by_bytes.truncate(top);
    let key_names: HashSet<&'a str> = shapes.iter().flat_map(|s| s.keys.iter().copied()).collect();
    shapes.truncate(top);

    let mut field_rows: Vec<FieldRow<'a>> = fields
        .into_iter()
        .map(|(name, f)| FieldRow {
            name,
            records: f.records,
            string_bytes: f.string_bytes,
            json_bytes: f.json_bytes,
        })
        .collect();
    field_rows.sort_by(|a, b| {
        (b.string_bytes, b.json_bytes)
            .cmp(&(a.string_bytes, a.json_bytes))
            .then(a.name.cmp(b.name))
    });
    field_rows.truncate(top);

    let largest_records: Vec<RecordRow<'a>> = largest
        .into_sorted_vec()
        .into_iter()
        .map(
            |Reverse((json_bytes, Reverse(id), string_bytes, fields))| RecordRow {
                id,
                fields,
                json_bytes,
                string_bytes,
            },
        )
        .collect();

    // The pool: its entries, then what the values, ids and key names make of them.
    let mut pool = PoolStats::default();
    if let Some(p) = stats.sections.iter().find(|s| s.name == "pool") {
        pool.bytes = p.len;
        pool.entries = stats.pool_entries as u64;
        pool.content_bytes = stats.pool_content_bytes;
        pool.prefix_bytes = p.len - stats.pool_content_bytes;
    }
    for (s, &refs) in &w.pooled {
        let (len, refs) = (s.len() as u64, u64::from(refs));
        pool.value_strings += 1;
        pool.value_string_bytes += len;
        pool.value_references += refs;
        pool.referenced_bytes += len * refs;
        if refs == 1 {
            pool.once_strings += 1;
            pool.once_bytes += len;
        } else {
            pool.shared_strings += 1;
            pool.shared_bytes += len;
            pool.shared_references += refs;
        }
    }
    pool.saved_bytes = pool.referenced_bytes - pool.value_string_bytes;
    pool.inline_strings = w.inline;
    [
        pool.plain_references,
        pool.fsst_references,
        pool.cold_references,
        pool.derived_references,
    ] = w.forms;
    for id in snap.ids() {
        if !w.pooled.contains_key(id.as_bytes()) {
            pool.id_only_strings += 1;
            pool.id_only_bytes += id.len() as u64;
        }
    }
    for k in key_names {
        if !w.pooled.contains_key(k.as_bytes()) && !snap.contains(k) {
            pool.key_only_strings += 1;
            pool.key_only_bytes += k.len() as u64;
        }
    }
    pool.other_bytes = overlay.is_none().then(|| {
        pool.content_bytes
            .saturating_sub(pool.value_string_bytes + pool.id_only_bytes + pool.key_only_bytes)
    });

    Ok(Report {
        file: path.display().to_string(),
        bytes: bytes.len() as u64,
        hash: snap.hash().to_string(),
        sections,
        overlay,
        records: snap.len() as u64,
        records_read,
        shapes: snap.shape_count() as u64,
        keys: snap.key_count() as u64,
        record_shapes,
        measures: Measures {
            json_bytes: JSON_BYTES,
            string_bytes: STRING_BYTES,
        },
        shapes_by_records: shapes,
        shapes_by_bytes: by_bytes,
        fields_by_string_bytes: field_rows,
        largest_records,
        pool,
    })
}

/// A name for one line of text: quoted if it is empty or has spaces or control characters.
fn show(s: &str) -> String {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

/// The first few key names of a shape.
fn key_list(keys: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = keys.iter().take(SHOWN).map(|k| show(k)).collect();
    if keys.len() > SHOWN {
        s.push(format!("... (+{} more)", keys.len() - SHOWN));
    }
    s.join(", ")
}

fn print_text(o: &mut dyn Write, r: &Report<'_>) -> std::io::Result<()> {
    writeln!(o, "{}: {} bytes, hash {}", r.file, r.bytes, r.hash)?;
    if let Some(ov) = &r.overlay {
        writeln!(
            o,
            "overlay over {} (depth {}; its base chain is {} bytes): stores {} id entries: \
             {} added, {} replaced whole, {} patched (changed fields only; {} nested maps \
             too), {} removed; {} base records unchanged (cost nothing)",
            ov.base,
            ov.depth,
            ov.base_bytes,
            ov.entries,
            ov.added,
            ov.replaced,
            ov.patched,
            ov.nested_patched,
            ov.removed,
            ov.unchanged
        )?;
        writeln!(
            o,
            "sections and pool entries below are this file's own; records, shapes, fields \
             and value strings are the merged tree's"
        )?;
    }
    write!(o, "records: {}", r.records)?;
    if r.records_read != r.records {
        write!(
            o,
            " ({} unreadable; run `fms verify`)",
            r.records - r.records_read
        )?;
    }
    writeln!(
        o,
        ", shapes: {} ({} used by records, the others by nested maps only), keys: {}",
        r.shapes, r.record_shapes, r.keys
    )?;

    writeln!(o, "\nsections:")?;
    writeln!(
        o,
        "  {:<8} {:>12} {:>12} {:>7}",
        "name", "offset", "bytes", "%"
    )?;
    for s in &r.sections {
        writeln!(
            o,
            "  {:<8} {:>12} {:>12} {:>6.1}%",
            s.name, s.offset, s.bytes, s.percent
        )?;
    }
    writeln!(
        o,
        "  {:<8} {:>12} {:>12} {:>6.1}%",
        "total",
        "",
        r.sections.iter().map(|s| s.bytes).sum::<u64>(),
        100.0
    )?;

    writeln!(
        o,
        "\nbytes below: json = {JSON_BYTES}; strings = {STRING_BYTES}."
    )?;
    shape_table(
        o,
        &format!(
            "shapes, top {} by records using them",
            r.shapes_by_records.len()
        ),
        &r.shapes_by_records,
    )?;
    shape_table(
        o,
        &format!(
            "record shapes, top {} by bytes of their records",
            r.shapes_by_bytes.len()
        ),
        &r.shapes_by_bytes,
    )?;

    writeln!(
        o,
        "\ntop-level fields, top {} by string bytes of their values:",
        r.fields_by_string_bytes.len()
    )?;
    writeln!(
        o,
        "  {:<24} {:>8} {:>12} {:>12}",
        "field", "records", "strings", "json"
    )?;
    for f in &r.fields_by_string_bytes {
        writeln!(
            o,
            "  {:<24} {:>8} {:>12} {:>12}",
            show(f.name),
            f.records,
            f.string_bytes,
            f.json_bytes
        )?;
    }

    writeln!(
        o,
        "\nlargest records, top {} by json bytes:",
        r.largest_records.len()
    )?;
    writeln!(
        o,
        "  {:<32} {:>12} {:>12} {:>6}",
        "id", "json", "strings", "fields"
    )?;
    for x in &r.largest_records {
        writeln!(
            o,
            "  {:<32} {:>12} {:>12} {:>6}",
            show(x.id),
            x.json_bytes,
            x.string_bytes,
            x.fields
        )?;
    }

    let p = &r.pool;
    writeln!(
        o,
        "\nstring pool: {} bytes ({:.1}% of the file), {} entries: {} content bytes + {} length-prefix bytes",
        p.bytes,
        percent(p.bytes, r.bytes),
        p.entries,
        p.content_bytes,
        p.prefix_bytes
    )?;
    writeln!(
        o,
        "  value strings (over 4 bytes) and byte strings{}: {} distinct, {} bytes; {} references, {} bytes if each had its own copy (dedup saves {})",
        if r.overlay.is_some() {
            " of the merged tree"
        } else {
            ""
        },
        p.value_strings,
        p.value_string_bytes,
        p.value_references,
        p.referenced_bytes,
        p.saved_bytes
    )?;
    writeln!(
        o,
        "    referenced once:      {:>9} strings, {:>12} bytes",
        p.once_strings, p.once_bytes
    )?;
    writeln!(
        o,
        "    referenced 2+ times:  {:>9} strings, {:>12} bytes, {} references",
        p.shared_strings, p.shared_bytes, p.shared_references
    )?;
    writeln!(
        o,
        "  inline strings (at most 4 bytes, in their slot, not in the pool): {} references",
        p.inline_strings
    )?;
    writeln!(
        o,
        "  longer strings by how they are stored: {} plain, {} FSST, {} cold, {} derived (references)",
        p.plain_references, p.fsst_references, p.cold_references, p.derived_references
    )?;
    writeln!(
        o,
        "  ids no value shares: {} strings, {} bytes; key names no value or id shares: {} strings, {} bytes",
        p.id_only_strings, p.id_only_bytes, p.key_only_strings, p.key_only_bytes
    )?;
    if let Some(other) = p.other_bytes {
        writeln!(
            o,
            "  other content (8-byte numbers, unreferenced entries): {other} bytes"
        )?;
    }
    o.flush()
}

fn shape_table(o: &mut dyn Write, title: &str, rows: &[ShapeRow<'_>]) -> std::io::Result<()> {
    writeln!(o, "\n{title}:")?;
    writeln!(
        o,
        "  {:<5} {:>8} {:>8} {:>12} {:>12} {:>5}  key names",
        "shape", "records", "nested", "json", "strings", "keys"
    )?;
    for s in rows {
        writeln!(
            o,
            "  {:<5} {:>8} {:>8} {:>12} {:>12} {:>5}  {}",
            s.label,
            s.records,
            s.nested,
            s.json_bytes,
            s.string_bytes,
            s.keys.len(),
            key_list(&s.keys)
        )?;
    }
    Ok(())
}
