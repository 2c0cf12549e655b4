//! lt-train: runs lt's ONNX graphs with onnxruntime through `ort` (load-dynamic).
//!
//! Invariant: no polars here, so the binary that travels to a GPU machine stays small.

pub mod runtime;
pub mod session;
