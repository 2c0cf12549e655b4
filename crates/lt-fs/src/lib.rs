//! The one place lt writes to the file system.
//!
//! - [`write_atomic`]: a file is written to a temporary sibling, synced and renamed, so a
//!   reader never sees half a file.
//! - [`Staging`]: a whole output directory (a dataset, a run, an extracted archive, a report)
//!   is written into a sibling `NAME.partial`, then swapped in by rename, so a kill at any
//!   moment leaves the old or the new output complete.
//! - [`Marker`]: every directory lt writes carries `.lt-output.json`, naming the tool and the
//!   format. `--force` replaces only a directory with a matching marker (or one an older lt
//!   wrote, recognised by its own files): lt never deletes what it did not write.
//! - [`guard`]: `/`, the home directory, the current directory and its ancestors are never an
//!   output, whatever the marker says.
//!
//! Every function names the path in its error.

mod atomic;
pub mod guard;
mod marker;
pub mod owners;
mod staging;

use std::path::PathBuf;

pub use atomic::{write_atomic, write_atomic_with};
pub use marker::{MARKER_FILE, Marker, MarkerState, Owner};
pub use staging::{Staging, remove_owned, staging_path};

/// Errors of lt-fs; every one names the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not empty; pass --force to replace it, or choose another output directory")]
    NotEmpty { path: PathBuf },
    #[error(
        "{path}: refusing to replace it: {reason}. lt replaces only directories it wrote itself (they hold {marker}); move it away or choose another output directory",
        marker = MARKER_FILE
    )]
    Foreign { path: PathBuf, reason: String },
    #[error("{path}: refusing to use it as an output directory: it is {what}")]
    Protected { path: PathBuf, what: &'static str },
}

impl FsError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
