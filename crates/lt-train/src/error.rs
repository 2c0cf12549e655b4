//! Why a run, a bench or an evaluation stopped: one error type for lt-train's library.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    #[error(transparent)]
    Graph(#[from] lt_graph::GraphError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    #[error("class weights: {0}")]
    Weights(String),
    #[error("{path}: {message}")]
    Output { path: PathBuf, message: String },
    #[error(transparent)]
    Fs(#[from] lt_fs::FsError),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; the run stopped, {out} is as it was before; lower --lr or check the data"
    )]
    NonFinite { value: f32, epoch: usize, step: usize, out: PathBuf },
    #[error("{0}")]
    Setup(String),
}
