//! Checkpoints: the full training state after an epoch, to resume a run from.
//!
//! Layout: `LTCKPT2\n`, a little-endian u64 header length, a JSON header (epoch, the
//! resolved config, metric rows so far, tensor names and sizes), every tensor's f32 values
//! little-endian in header order, then the SHA-256 of everything before it. A checkpoint
//! whose checksum does not match is refused: resuming from flipped bytes would rewrite the
//! model from bad weights with exit 0. Written to a temporary name and renamed, so a killed
//! run always leaves the last complete checkpoint.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"LTCKPT2\n";
/// The format before checksums: refused with its own message.
const MAGIC_V1: &[u8; 8] = b"LTCKPT1\n";
const CHECKSUM_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not an lt checkpoint or truncated ({message}); start the run again without --resume")]
    Corrupt { path: PathBuf, message: String },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct TensorEntry {
    name: String,
    len: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Header<M> {
    epoch: usize,
    meta: M,
    tensors: Vec<TensorEntry>,
}

/// A checkpoint in memory: the epoch it ends, caller metadata and the state tensors.
#[derive(Debug, Clone)]
pub struct Checkpoint<M> {
    pub epoch: usize,
    pub meta: M,
    pub tensors: Vec<(String, Vec<f32>)>,
}

impl<M: serde::Serialize + serde::de::DeserializeOwned> Checkpoint<M> {
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let header = Header {
            epoch: self.epoch,
            meta: &self.meta,
            tensors: self.tensors.iter().map(|(n, v)| TensorEntry { name: n.clone(), len: v.len() }).collect(),
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        lt_fs::write_atomic_with(path, |out| {
            let mut hashing = HashingWriter { inner: out, hash: Sha256::new() };
            hashing.write_all(MAGIC)?;
            hashing.write_all(&(json.len() as u64).to_le_bytes())?;
            hashing.write_all(&json)?;
            for (_, values) in &self.tensors {
                for v in values {
                    hashing.write_all(&v.to_le_bytes())?;
                }
            }
            let digest = hashing.hash.finalize();
            hashing.inner.write_all(&digest)
        })
        .map_err(|e| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() })
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let corrupt = |m: &str| CheckpointError::Corrupt { path: path.to_path_buf(), message: m.to_string() };
        if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
            return Err(corrupt("written by an older lt-train, without a checksum"));
        }
        if bytes.len() < 16 + CHECKSUM_LEN || &bytes[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let (content, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(content).as_slice() != checksum {
            return Err(corrupt("its SHA-256 checksum does not match its content: the file was modified or damaged"));
        }
        let hlen = usize::try_from(u64::from_le_bytes(content[8..16].try_into().expect("8 bytes")))
            .map_err(|_| corrupt("header length out of range"))?;
        let body = 16usize
            .checked_add(hlen)
            .and_then(|end| content.get(16..end))
            .ok_or_else(|| corrupt("header cut short"))?;
        let header: Header<M> = serde_json::from_slice(body).map_err(|e| corrupt(&e.to_string()))?;
        let mut offset = 16 + hlen;
        let mut tensors = Vec::with_capacity(header.tensors.len().min(content.len() / 4));
        for t in header.tensors {
            // Sizes come from the file: checked against what is there before any allocation.
            let raw = t
                .len
                .checked_mul(4)
                .and_then(|n| offset.checked_add(n))
                .and_then(|end| content.get(offset..end))
                .ok_or_else(|| corrupt(&format!("tensor `{}` cut short", t.name)))?;
            tensors.push((
                t.name,
                raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
            ));
            offset += raw.len();
        }
        if offset != content.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Checkpoint { epoch: header.epoch, meta: header.meta, tensors })
    }

    pub fn tensor_map(&self) -> HashMap<String, Vec<f32>> {
        self.tensors.iter().cloned().collect()
    }
}

/// Passes bytes on and hashes them.
struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        let ck = Checkpoint {
            epoch: 3,
            meta: vec![1u32, 2],
            tensors: vec![("w".into(), vec![1.5, -2.0]), ("b".into(), vec![])],
        };
        ck.save(&path).unwrap();
        let back: Checkpoint<Vec<u32>> = Checkpoint::load(&path).unwrap();
        assert_eq!((back.epoch, back.meta, back.tensors), (3, vec![1, 2], ck.tensors.clone()));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = Checkpoint::<Vec<u32>>::load(&path).unwrap_err();
        assert!(err.to_string().contains("checksum does not match"), "{err}");
    }

    /// Issue 13, defect 9: metric rows restored on resume differed in the last digit, so
    /// metrics.parquet of a resumed run was not byte-identical (serde_json's default float
    /// parser is not exact; the workspace enables `float_roundtrip`).
    #[test]
    fn f64_metadata_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        let mut x = 0x9e3779b97f4a7c15u64;
        let values: Vec<f64> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        Checkpoint { epoch: 1, meta: values.clone(), tensors: vec![] }.save(&path).unwrap();
        let back: Checkpoint<Vec<f64>> = Checkpoint::load(&path).unwrap();
        let differ = values.iter().zip(&back.meta).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{differ} of {} values changed", values.len());
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        let ck = Checkpoint { epoch: 1, meta: 7u32, tensors: vec![("w".into(), vec![0.25; 64])] };
        ck.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            let err = Checkpoint::<u32>::load(&path).unwrap_err().to_string();
            assert!(err.contains("last.ckpt") && (err.contains("checksum") || err.contains("magic")), "{i}: {err}");
        }
        // A version-1 checkpoint (no checksum) says so.
        let mut v1 = good.clone();
        v1[..8].copy_from_slice(MAGIC_V1);
        std::fs::write(&path, &v1).unwrap();
        let err = Checkpoint::<u32>::load(&path).unwrap_err().to_string();
        assert!(err.contains("older lt-train"), "{err}");
    }
}
