//! lt-train: runs lt's ONNX graphs with onnxruntime through `ort` (load-dynamic).
//!
//! Invariant: no polars here, so the binary that travels to a GPU machine stays small.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod cuda_libs;
pub mod dataset;
pub mod device;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod loader;
pub mod mix;
pub mod progress;
pub mod record;
pub mod runtime;
pub mod schedule;
pub mod train;
