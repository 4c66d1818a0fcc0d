//! `SnapshotBuilder::extend_jsonl` on input of many batches: it parses on a second thread
//! while it encodes, and must add the same records in the same order, and fail on the same
//! line with the same error, as a line-by-line read.

use std::io::Read;

use fms::{Error, SnapshotBuilder};

/// `n` JSONL lines (with blank lines and CRLF endings among them), about 200 bytes each.
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 50 {
            7 => String::new(),
            13 => "   \r".to_owned(),
            _ => format!(
                "{{\"id\": \"item/{i}\", \"title\": \"Item {i}\", \"n\": {i}, \"tags\": [\"a{}\", \"b\"], \"body\": \"{}\"}}{}",
                i % 7,
                "word ".repeat(i % 40),
                if i % 3 == 0 { "\r" } else { "" }
            ),
        })
        .collect()
}

fn jsonl(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The same lines inserted one by one, as the serial reader did.
fn line_by_line(lines: &[String]) -> SnapshotBuilder {
    let mut b = SnapshotBuilder::new();
    for l in lines {
        if l.trim().is_empty() {
            continue;
        }
        // Parsed as the old reader did: fields in the line's order.
        let mut m: fms::TupleMap = serde_json::from_str(l).unwrap();
        let Some(fms::Value::Str(id)) = m.remove("id") else {
            panic!("no id: {l}")
        };
        b.insert(&id, &m).unwrap();
    }
    b
}

#[test]
fn many_batches_build_the_same_bytes_as_line_by_line_inserts() {
    // 64 lines make a batch, so this is 47 of them, in flight two at a time.
    let input = lines(3_000);
    let mut b = SnapshotBuilder::new();
    let added = b
        .extend_jsonl(jsonl(&input).as_bytes(), "big.jsonl", "id")
        .unwrap();
    assert_eq!(added, 3_000 - 2 * 60);
    assert!(b.to_bytes().unwrap() == line_by_line(&input).to_bytes().unwrap());
    // A single line longer than a batch's bytes, then more.
    let mut input = lines(100);
    input.insert(
        70,
        format!(
            "{{\"id\": \"long\", \"body\": \"{}\"}}",
            "x".repeat(300_000)
        ),
    );
    let mut b = SnapshotBuilder::new();
    b.extend_jsonl(jsonl(&input).as_bytes(), "long.jsonl", "id")
        .unwrap();
    assert!(b.to_bytes().unwrap() == line_by_line(&input).to_bytes().unwrap());
}

/// The line number and root error of a failed `extend_jsonl`, and which ids it added.
fn failure(input: &str, probe: &[&str]) -> (u64, Error, Vec<bool>) {
    let mut b = SnapshotBuilder::new();
    let err = b
        .extend_jsonl(input.as_bytes(), "in.jsonl", "id")
        .unwrap_err();
    let has = probe.iter().map(|id| b.contains(id)).collect();
    match err {
        Error::Jsonl {
            input,
            line,
            source,
            ..
        } => {
            assert_eq!(input, "in.jsonl");
            (line, *source, has)
        }
        e => panic!("not a JSONL error: {e:?}"),
    }
}

#[test]
fn an_error_in_a_late_batch_names_its_line_and_keeps_the_lines_before() {
    let base = lines(1_000);
    // Bad JSON, a non-object, a missing id, a duplicate id, each far past the first batch.
    for (at, bad, want) in [
        (612, "{\"id\": \"x\", oops}".to_owned(), "json"),
        (613, "[1, 2]".to_owned(), "input"),
        (899, "{\"title\": \"no id\"}".to_owned(), "input"),
        (400, "{\"id\": \"item/3\"}".to_owned(), "duplicate"),
    ] {
        let mut input = base.clone();
        input[at] = bad;
        let before = format!("item/{}", at - 1);
        let after = format!("item/{}", at + 1);
        let (line, err, has) = failure(&jsonl(&input), &[&before, &after]);
        assert_eq!(line, at as u64 + 1, "{want}");
        let kind = match err {
            Error::Json(_) => "json",
            Error::InvalidInput(_) => "input",
            Error::DuplicateId { ref id } if id == "item/3" => "duplicate",
            ref e => panic!("{e:?}"),
        };
        assert_eq!(kind, want);
        assert_eq!(has, [true, false], "{want} at line {}", at + 1);
    }
}

/// Reads `data`, then fails with an I/O error.
struct FailsAfter {
    data: std::io::Cursor<Vec<u8>>,
}

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(std::io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_read_error_comes_after_the_lines_before_it() {
    let input = lines(500);
    // The input ends inside line 301 (no newline), then the read fails.
    let mut text = jsonl(&input[..300]);
    text.push_str("{\"id\": \"cut");
    let reader = std::io::BufReader::with_capacity(
        4096,
        FailsAfter {
            data: std::io::Cursor::new(text.into_bytes()),
        },
    );
    let mut b = SnapshotBuilder::new();
    let (line, err) = failing_line(&mut b, reader);
    assert_eq!(line, 301);
    assert!(err.contains("disk on fire"), "{err}");
    assert!(b.contains("item/299"));
    assert_eq!(b.len(), 300 - 12);

    // Invalid UTF-8 on line 200 of 500: an error on that line, the lines before it kept.
    let bytes = bad_utf8_on(&input, 200);
    let mut b = SnapshotBuilder::new();
    assert_eq!(failing_line(&mut b, &bytes[..]).0, 200);
    assert!(b.contains("item/198") && !b.contains("item/200"));
}

/// `lines` as JSONL with an invalid UTF-8 byte inside line `n` (1-based).
fn bad_utf8_on(lines: &[String], n: usize) -> Vec<u8> {
    let mut bytes = jsonl(lines).into_bytes();
    let at = bytes
        .split(|&c| c == b'\n')
        .take(n - 1)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    bytes[at + 20] = 0xff;
    bytes
}

/// The line `extend_jsonl` of `reader` into `b` fails on, and the error's text.
fn failing_line(b: &mut SnapshotBuilder, reader: impl std::io::BufRead) -> (u64, String) {
    let e = b.extend_jsonl(reader, "in.jsonl", "id").unwrap_err();
    match &e {
        Error::Jsonl { line, .. } => (*line, e.to_string()),
        _ => panic!("not a JSONL error: {e:?}"),
    }
}

#[test]
fn a_reader_that_is_not_send_works() {
    // The reader stays on the calling thread: only lines cross to the parser.
    struct NotSend<R>(R, std::marker::PhantomData<*const ()>);
    impl<R: Read> Read for NotSend<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    let input = jsonl(&lines(400));
    let reader = std::io::BufReader::new(NotSend(input.as_bytes(), std::marker::PhantomData));
    let mut b = SnapshotBuilder::new();
    assert_eq!(b.extend_jsonl(reader, "r.jsonl", "id").unwrap(), 400 - 16);
}

/// What the line-by-line reader did with `text`: each non-blank line parsed, its id
/// taken out and the rest inserted, stopping at the first bad line. The number added, or
/// the bad line's number.
fn reference(b: &mut SnapshotBuilder, text: &str) -> Result<usize, u64> {
    let mut added = 0;
    for (n, line) in text.lines().enumerate() {
        let n = n as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(fms::Value::Map(mut m)) = serde_json::from_str::<fms::Value>(line) else {
            return Err(n);
        };
        let id = match m.remove("id") {
            Some(fms::Value::Str(s)) => s,
            Some(fms::Value::Int(i)) => i.to_string(),
            _ => return Err(n),
        };
        b.insert(&id, &*m).map_err(|_| n)?;
        added += 1;
    }
    Ok(added)
}

/// `extend_jsonl` of `text` into `new()` agrees with [`reference`] into another `new()`:
/// the same count or failing line, and the same bytes written after it.
fn agrees(text: &str, new: impl Fn() -> SnapshotBuilder) {
    let (mut b, mut r) = (new(), new());
    let got = match b.extend_jsonl(text.as_bytes(), "in.jsonl", "id") {
        Ok(n) => Ok(n),
        Err(Error::Jsonl { line, .. }) => Err(line),
        Err(e) => panic!("not a JSONL error: {e}"),
    };
    assert_eq!(got, reference(&mut r, text));
    assert!(
        b.to_bytes().unwrap() == r.to_bytes().unwrap(),
        "bytes differ"
    );
}

#[test]
fn batch_edges_last_lines_and_early_errors_agree_with_a_line_by_line_read() {
    let good = |n: usize| lines(n).into_iter().filter(|l| !l.trim().is_empty());
    // Exactly one and two batches of non-blank lines (the end is seen on the next read),
    // and one more; the last line without its newline.
    for n in [63, 64, 65, 128, 129, 300] {
        let all: Vec<String> = good(n * 2).take(n).collect();
        agrees(&jsonl(&all), SnapshotBuilder::new);
        agrees(jsonl(&all).trim_end(), SnapshotBuilder::new);
    }
    // A bad first line of a long input; a duplicate inside one batch and across batches;
    // a line nested past the height limit (refused before any of its nodes is written).
    let mut deep = "1".to_owned();
    for _ in 0..70 {
        deep = format!("{{\"k\": {deep}}}");
    }
    let deep = format!("{{\"id\": \"deep\", \"v\": {deep}}}");
    for (at, bad) in [
        (0, "{\"id\": 1.5}".to_owned()),
        (10, "{\"id\": \"item/3\"}".to_owned()),
        (200, "{\"id\": \"item/150\"}".to_owned()),
        (300, "{\"id\": \"\"}".to_owned()),
        (5, deep.clone()),
        (170, deep),
    ] {
        let mut all = lines(400);
        all[at] = bad;
        agrees(&jsonl(&all), SnapshotBuilder::new);
    }
}

#[test]
fn an_overlay_builder_fed_jsonl_agrees_with_one_fed_inserts() {
    let base_lines = lines(500);
    let mut b = SnapshotBuilder::new();
    b.extend_jsonl(jsonl(&base_lines).as_bytes(), "en.jsonl", "id")
        .unwrap();
    let base = std::sync::Arc::new(fms::Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    // Every third record changed (patched), the others the same (free), some new.
    let mut over: Vec<String> = base_lines
        .iter()
        .enumerate()
        .map(|(i, l)| match i % 3 {
            0 => l.replace("Item", "Artículo"),
            _ => l.clone(),
        })
        .collect();
    over.extend((0..100).map(|i| format!("{{\"id\": \"new/{i}\", \"title\": \"Nuevo {i}\"}}")));
    agrees(&jsonl(&over), || SnapshotBuilder::with_base(&base));
}

#[test]
fn short_input_read_errors_name_their_line() {
    // Fewer lines than a batch: parsed without the second thread, same errors.
    let input = lines(40);
    let mut text = jsonl(&input[..30]);
    text.push_str("{\"id\": \"cut");
    let reader = std::io::BufReader::new(FailsAfter {
        data: std::io::Cursor::new(text.into_bytes()),
    });
    let mut b = SnapshotBuilder::new();
    assert_eq!(failing_line(&mut b, reader).0, 31);
    assert_eq!(b.len(), 30 - 2);
    let bytes = bad_utf8_on(&input, 20);
    let mut b = SnapshotBuilder::new();
    assert_eq!(failing_line(&mut b, &bytes[..]).0, 20);
    assert!(b.contains("item/18") && !b.contains("item/19"));
}
