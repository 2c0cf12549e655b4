//! lt-data integration tests: one binary, a module per area.

mod build;
mod cli;
mod fetch;
mod fuzz;
mod helpers;
mod pickle;
mod profiles;
mod resample;
mod sources;
mod validation;
mod weights;
