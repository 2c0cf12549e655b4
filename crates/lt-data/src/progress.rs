//! Progress reporting. Libraries call this small trait; only the binary draws bars.

/// Receives progress of long steps. All methods have empty defaults.
pub trait Progress: Sync {
    /// A new stage starts; `total` units (bytes, images, rows) are expected, 0 if unknown.
    fn stage(&self, _name: &str, _total: u64) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is complete.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
