//! The ownership marker: `.lt-output.json` in every directory lt writes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::FsError;

/// The marker's file name, inside the directory it marks.
pub const MARKER_FILE: &str = ".lt-output.json";

/// Whether the marked directory is still being written (a staging directory) or complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerState {
    Partial,
    Complete,
}

/// What `.lt-output.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The command that wrote the directory, e.g. `lt-data build`.
    pub tool: String,
    /// The directory's format, e.g. `lt-dataset`; `--force` replaces only the same format.
    pub format: String,
    pub state: MarkerState,
}

/// A kind of output directory: who writes it and how to recognise one that an lt from
/// before the marker wrote.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub tool: &'static str,
    pub format: &'static str,
    /// Recognises a directory of this format written before markers existed (e.g. by its
    /// dataset.json); `None` when every such directory has a marker.
    pub legacy: Option<fn(&Path) -> bool>,
}

impl Marker {
    /// The marker in `dir`, if there is a readable one. A marker that does not parse is no
    /// marker: it proves nothing about who wrote the directory.
    pub fn read(dir: &Path) -> Option<Marker> {
        let path = dir.join(MARKER_FILE);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        // A marker is a small regular file; anything else (a link, a device, a huge file) is
        // not one of lt's.
        if !meta.is_file() || meta.len() > 4096 {
            return None;
        }
        serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
    }

    pub(crate) fn write(dir: &Path, owner: &Owner, state: MarkerState) -> Result<(), FsError> {
        let marker = Marker { tool: owner.tool.into(), format: owner.format.into(), state };
        let text = serde_json::to_vec_pretty(&marker).expect("a marker always serialises");
        crate::write_atomic(&dir.join(MARKER_FILE), &text)
    }
}

impl Owner {
    /// Whether `dir` holds output of this format: a marker of the same format, or the files of
    /// an older lt.
    pub fn owns(&self, dir: &Path) -> bool {
        match Marker::read(dir) {
            Some(m) => m.format == self.format,
            None => self.legacy.is_some_and(|recognise| recognise(dir)),
        }
    }

    /// The marker's state when `dir` has a marker of this format.
    pub(crate) fn state_in(&self, dir: &Path) -> Option<MarkerState> {
        Marker::read(dir).filter(|m| m.format == self.format).map(|m| m.state)
    }
}
