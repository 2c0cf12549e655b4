//! lt-data: datasets for long-tailed classification.
//!
//! Sources (CIFAR-10/100 binary, CIFAR-10 python pickles read without executing code, image
//! folders, a procedural synthetic set), long-tail profiles, resampled manifests, class weights
//! for the loss, and the dataset directory (Parquet tables + `dataset.json`, see
//! docs/FORMATS.md).
//!
//! Without default features (`lt-data = { default-features = false }`) the crate holds the pure
//! parts only: [`weights`], [`profile`], [`validation`], [`resample`], [`meta`], the
//! CIFAR/pickle/synthetic readers. Feature `parquet` (polars) adds [`parquet`], [`build`] and
//! [`inspect`]; `folder` adds the image-folder source; `fetch` the downloader; `cli` the
//! `lt-data` binary.

#[cfg(feature = "parquet")]
pub mod build;
pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod hash;
#[cfg(feature = "parquet")]
pub mod inspect;
pub mod meta;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod profile;
pub mod progress;
pub mod resample;
pub mod rng;
pub mod source;
pub mod validation;
pub mod weights;

pub use error::DataError;
pub use meta::DatasetMeta;
pub use profile::Profile;
pub use progress::{NoProgress, Progress};
pub use resample::{Manifest, Strategy};
pub use source::{Dataset, SourceOptions, SourceSpec, Split};
pub use weights::{Normalize, WeightScheme, class_weights};
