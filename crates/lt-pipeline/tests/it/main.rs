//! lt-pipeline's integration tests: pipeline files (parsing, resolution, key errors) and
//! running pipelines end to end through the lt-data, lt-train and lt-report binaries.

mod config;
mod fixture;
mod fuzz;
mod notebook;
mod run;
mod seeds;
