//! lt's file formats and vocabulary, shared by every tool so that a format or a word is
//! defined once:
//! - [`vocab`]: the named choices (loss, class weights, resampler, profile, execution provider,
//!   augmentation, lowering, shot split) with `FromStr`/`Display`/serde; an unknown name is an
//!   error listing the valid ones, the same in a flag, a TOML file and a JSON record.
//! - [`config`]: `TrainConfig`, every setting of a training run (the `lt-train` flags, the
//!   `[train]` keys of a pipeline, run.json's `config`).
//! - [`run`]: `RunRecord`, the typed run.json.
//! - [`dataset`]: `DatasetMeta`, the typed dataset.json.
//! - [`tables`] (feature `tables`): metrics.parquet and predictions.parquet, one schema, one
//!   writer and one reader each.
//! - [`scores`]: softmax and argmax as every tool computes them.
//! - [`hash`]: the seeded SplitMix64 hash behind every "random" choice that must not depend on
//!   an RNG crate's version.
//!
//! No polars and no onnxruntime: lt-pipeline links this crate alone.

pub mod config;
pub mod dataset;
pub mod hash;
mod json;
pub mod run;
pub mod schedule;
pub mod scores;
#[cfg(feature = "tables")]
pub mod tables;
pub mod vocab;

#[cfg(feature = "cli")]
pub mod cli;

pub use config::{ConfigError, TrainConfig};
pub use run::{RunHeader, RunRecord};
pub use vocab::{Vocab, VocabError};
