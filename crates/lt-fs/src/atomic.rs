//! Whole-file writes that a reader (or a kill) never sees half done.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::FsError;

/// Writes `bytes` to `path` through `path.partial`, synced and renamed when complete. Creates
/// the parent directory.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a/b.txt");
/// lt_fs::write_atomic(&path, b"hello").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], for content produced by a writer function (e.g. a Parquet writer).
/// Nothing appears at `path` unless `write` succeeds.
pub fn write_atomic_with<F>(path: &Path, write: F) -> Result<(), FsError>
where
    F: FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
{
    let io = |e| FsError::io(path, e);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FsError::io(parent, e))?;
    }
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".partial");
    let result = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
