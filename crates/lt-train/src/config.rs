//! The training settings: `TrainConfig` and its vocabulary live in lt-format, shared with
//! lt-pipeline (which resolves a pipeline into them) and run.json; this module is their
//! historical path in lt-train.

pub use lt_format::config::*;
