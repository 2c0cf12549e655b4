//! Sessions over in-memory ONNX models, with lt's threading defaults.

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::runtime::{Runtime, RuntimeError};

/// Intra-op threads for CPU sessions: the machine's cores, so onnxruntime and the rayon
/// loader do not oversubscribe a small machine (the loader prefetches between runs).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Creates a CPU session from serialised model bytes.
pub fn cpu_session(model: &[u8], threads: usize) -> Result<Session, RuntimeError> {
    let runtime = Runtime::get(false)?;
    let session = Session::builder(runtime.environment())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort::Error::from)?
        .with_intra_threads(threads)
        .map_err(ort::Error::from)?
        .commit_from_memory(model)?;
    Ok(session)
}
