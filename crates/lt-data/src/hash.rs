//! Streaming file digests: sha256 for dataset content hashes, MD5 for the published
//! checksums of downloaded archives. Both hashers implement the same `Digest` trait.

use std::io::Read;
use std::path::Path;

use crate::DataError;

/// Hex digest of a file's bytes, read in 1 MiB chunks.
pub fn hex_digest_of_file<D: sha2::Digest>(path: &Path) -> Result<String, DataError> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
