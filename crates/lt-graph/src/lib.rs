//! lt-graph: ONNX graphs for long-tailed training, built without onnxruntime.
//!
//! Invariant: this crate never links onnxruntime and touches no file except through the
//! explicit [`onnx::save`] / [`onnx::load`]. Everything that runs a graph lives in lt-train.

pub mod import;
pub mod models;
pub mod onnx;
pub mod optimize;
pub mod train;

/// Errors of graph building, encoding and file access.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{origin}: not a valid ONNX model ({message}); check that the file is a complete .onnx export")]
    Decode { origin: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("graph has no value named `{name}`: {hint}")]
    UnknownValue { name: String, hint: String },
    #[error("value `{name}` is defined twice; every input, initializer and node output needs a unique name")]
    DuplicateValue { name: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("node `{node}` ({op}): {message}")]
    Unsupported { node: String, op: String, message: String },
    #[error("model: {0}")]
    Model(String),
}
