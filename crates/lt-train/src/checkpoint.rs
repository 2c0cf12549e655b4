//! Checkpoints: the full training state after an epoch, to resume a run from.
//!
//! Layout: `LTCKPT1\n`, a little-endian u64 header length, a JSON header (epoch, the
//! resolved config, metric rows so far, tensor names and sizes), then every tensor's f32
//! values little-endian in header order. Written to a temporary name and renamed, so a
//! killed run always leaves the last complete checkpoint.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LTCKPT1\n";

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
        let io = |e: std::io::Error| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() };
        let header = Header {
            epoch: self.epoch,
            meta: &self.meta,
            tensors: self.tensors.iter().map(|(n, v)| TensorEntry { name: n.clone(), len: v.len() }).collect(),
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let tmp = path.with_extension("ckpt.partial");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        for (_, values) in &self.tensors {
            for v in values {
                out.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
        out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CheckpointError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let corrupt = |m: &str| CheckpointError::Corrupt { path: path.to_path_buf(), message: m.to_string() };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let hlen = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let body = bytes.get(16..16 + hlen).ok_or_else(|| corrupt("header cut short"))?;
        let header: Header<M> = serde_json::from_slice(body).map_err(|e| corrupt(&e.to_string()))?;
        let mut offset = 16 + hlen;
        let mut tensors = Vec::with_capacity(header.tensors.len());
        for t in header.tensors {
            let raw = bytes
                .get(offset..offset + 4 * t.len)
                .ok_or_else(|| corrupt(&format!("tensor `{}` cut short", t.name)))?;
            tensors.push((
                t.name,
                raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
            ));
            offset += 4 * t.len;
        }
        if offset != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Checkpoint { epoch: header.epoch, meta: header.meta, tensors })
    }

    pub fn tensor_map(&self) -> HashMap<String, Vec<f32>> {
        self.tensors.iter().cloned().collect()
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
        assert!(err.to_string().contains("cut short"), "{err}");
    }
}
