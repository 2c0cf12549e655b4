//! The ONNX file format: protobuf messages, a small graph builder, and save/load.

mod builder;
pub mod proto;

pub use builder::{Attr, Dim, GraphBuilder, Tensor, attribute, value_info, value_info_dims};

use std::path::Path;

use prost::Message;

use crate::GraphError;

/// The opset lt emits: 17 has every op the training graph needs (LayerNormalization is not
/// used; ReduceSum takes axes as an input since 13, the other reductions since 18).
pub const OPSET: i64 = 17;
/// ONNX IR version matching opset 17.
pub const IR_VERSION: i64 = 8;

/// Serialises a model to protobuf bytes.
pub fn encode(model: &proto::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Parses protobuf bytes into a model; `origin` names the source in errors.
pub fn decode(bytes: &[u8], origin: &str) -> Result<proto::ModelProto, GraphError> {
    proto::ModelProto::decode(bytes)
        .map_err(|e| GraphError::Decode { origin: origin.to_string(), message: e.to_string() })
}

/// Writes a model to `path` through a temporary file renamed when complete, so a crash
/// never leaves a truncated `.onnx` behind.
pub fn save(model: &proto::ModelProto, path: &Path) -> Result<(), GraphError> {
    lt_fs::write_atomic(path, &encode(model))
        .map_err(|e| GraphError::Io { path: path.display().to_string(), message: e.to_string() })
}

/// Reads a `.onnx` file.
pub fn load(path: &Path) -> Result<proto::ModelProto, GraphError> {
    let bytes =
        std::fs::read(path).map_err(|e| GraphError::Io { path: path.display().to_string(), message: e.to_string() })?;
    decode(&bytes, &path.display().to_string())
}
