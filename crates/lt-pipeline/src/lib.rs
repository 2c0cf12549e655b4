//! lt's pipelines: a TOML file names a dataset build, experiments that differ in a few
//! settings and a report; [`run::run`] runs `lt-data build`, `lt-train` per experiment and
//! `lt-report` as child processes, skipping steps whose stamps (content hashes of their
//! resolved settings and inputs) match, and resuming interrupted training.

pub mod error;
pub mod run;
pub mod spec;
pub mod stamp;

pub use error::PipelineError;
pub use spec::{Overrides, Pipeline, load};
