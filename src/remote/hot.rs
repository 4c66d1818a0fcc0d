//! The hot set: the records every frontend keeps in process for a version, chosen at push
//! time (from access counts or a list) and written into the origin as an ordinary fms
//! snapshot, so that readers map it (shared by every process on the host through the page
//! cache) instead of fetching and holding copies.

use std::collections::HashMap;
use std::io::BufRead;

use crate::{Result, Snapshot, SnapshotBuilder};

/// The `n` ids seen most often in `lines` (one id per line, as an access log lists them;
/// blank lines and surrounding whitespace ignored), most frequent first, ties by first
/// appearance. A list of distinct ids with `n` ≥ its length comes back as it is.
///
/// ```
/// # #[cfg(feature = "remote")] {
/// let log = "video:a\ntopic:b\nvideo:a\n\nvideo:c\ntopic:b\nvideo:a\n";
/// let hot = fms::remote::choose_hot(log.as_bytes(), 2).unwrap();
/// assert_eq!(hot, ["video:a", "topic:b"]);
/// # }
/// ```
pub fn choose_hot(lines: impl BufRead, n: usize) -> std::io::Result<Vec<String>> {
    // id -> (count, first line)
    let mut seen: HashMap<String, (u64, usize)> = HashMap::new();
    for (i, line) in lines.lines().enumerate() {
        let line = line?;
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        match seen.get_mut(id) {
            Some(e) => e.0 += 1,
            None => {
                seen.insert(id.to_owned(), (1, i));
            }
        }
    }
    let mut all: Vec<(String, (u64, usize))> = seen.into_iter().collect();
    all.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    all.truncate(n);
    Ok(all.into_iter().map(|(id, _)| id).collect())
}

/// The hot-set snapshot of `tree`: its records `ids` (those it has; others are skipped),
/// in that order, built with the tree's own field order and values. Deterministic.
pub fn build_hot(tree: &Snapshot, ids: &[String]) -> Result<Vec<u8>> {
    let mut b = SnapshotBuilder::new();
    for id in ids {
        if let Some(rec) = tree.get(id) {
            b.insert(id, &rec.to_owned()?)?;
        }
    }
    b.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_frequent_first_ties_by_first_appearance() {
        let log = " b \na\nc\nb\na\n\nd\n";
        assert_eq!(
            choose_hot(log.as_bytes(), 10).unwrap(),
            ["b", "a", "c", "d"]
        );
        assert_eq!(choose_hot(log.as_bytes(), 1).unwrap(), ["b"]);
        assert!(choose_hot(log.as_bytes(), 0).unwrap().is_empty());
        assert!(choose_hot("".as_bytes(), 5).unwrap().is_empty());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error() {
        assert!(choose_hot(&b"a\n\xff\n"[..], 5).is_err());
    }

    #[test]
    fn the_hot_snapshot_holds_the_named_records_the_tree_has() {
        let mut b = SnapshotBuilder::new();
        for i in 0..10 {
            b.insert(
                &format!("r:{i}"),
                &serde_json::json!({"n": i, "t": format!("text {i}")}),
            )
            .unwrap();
        }
        let tree = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
        let ids: Vec<String> = ["r:7", "nope", "r:2"].map(String::from).into();
        let hot = Snapshot::from_bytes(build_hot(&tree, &ids).unwrap()).unwrap();
        hot.verify().unwrap();
        assert_eq!(hot.ids().collect::<Vec<_>>(), ["r:7", "r:2"]);
        assert!(hot.get("r:7").unwrap() == tree.get("r:7").unwrap().to_owned().unwrap());
        assert_eq!(
            build_hot(&tree, &ids).unwrap(),
            build_hot(&tree, &ids).unwrap()
        );
    }
}
