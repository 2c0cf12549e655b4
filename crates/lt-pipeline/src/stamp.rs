//! Stamp files: one JSON file per step under OUT/stamps/, recording the hash of the step's
//! resolved settings and inputs (`key`), whether it finished, and the hash of its output.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::PipelineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The step was started with these settings and has not finished (a rerun resumes it).
    Running,
    /// The step finished; `output` is the sha256 of its main output file.
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub step: String,
    /// sha256 of the canonical JSON of the step's settings and its inputs' hashes.
    pub key: String,
    pub state: State,
    /// sha256 of the step's main output (dataset.json, run.json, index.html) when done.
    pub output: Option<String>,
    /// What went into `key`, for people reading the stamp.
    pub inputs: serde_json::Value,
}

/// sha256 (hex) of a JSON value's compact serialisation (objects have sorted keys).
pub fn hash_json(v: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(serde_json::to_string(&sort(v)).unwrap_or_default().as_bytes()))
}

fn sort(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), sort(&m[k]));
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
        other => other.clone(),
    }
}

/// sha256 (hex) of a file's bytes.
pub fn hash_file(path: &Path) -> Result<String, PipelineError> {
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Io { path: path.to_path_buf(), source })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Reads a stamp; a missing or unreadable one is `None` (the step runs again).
pub fn read(path: &Path) -> Option<Stamp> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes a file through a temporary name in the same directory, then renames it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    Ok(lt_fs::write_atomic(path, bytes)?)
}

pub fn write(path: &Path, stamp: &Stamp) -> Result<(), PipelineError> {
    let text = serde_json::to_string_pretty(stamp).unwrap_or_default();
    write_atomic(path, format!("{text}\n").as_bytes())
}
