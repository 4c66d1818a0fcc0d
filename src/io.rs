//! Writing files atomically: a temporary file in the same directory, fsynced, renamed over
//! the target. Snapshots, manifests and the CLI's outputs all go through here.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes the file at `path` atomically: `fill` writes into a temporary file in the same
/// directory, which is then flushed, fsynced and renamed over `path` (and the directory
/// fsynced). On any error, from `fill` or from the file system, nothing appears at `path`
/// (an existing file there is left as it was) and the temporary file is removed.
///
/// The file is created world-readable (`0644`, less the umask), like `File::create`:
/// snapshots and manifests are read by other processes.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("hello.txt");
/// fms::write_file_atomically(&path, |w| {
///     w.write_all(b"hello\n").map_err(|e| fms::Error::Value(e.to_string()))
/// })?;
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
/// # Ok(()) }
/// ```
pub fn write_file_atomically<T>(
    path: impl AsRef<Path>,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tb = tempfile::Builder::new();
    tb.prefix(".fms-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tb.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = tb.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    let out = fill(&mut w)?;
    w.flush().map_err(|e| Error::io(tmp.path(), e))?;
    drop(w);
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; failure here does not undo a completed write.
        let _ = d.sync_all();
    }
    Ok(out)
}
