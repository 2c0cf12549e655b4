//! lt-train integration tests: one binary, one module per area.

mod augment;
mod bench_cli;
mod dataset_splits;
mod eval_posthoc;
mod fixture;
mod fuzz;
mod golden_step;
mod graph_grad;
mod graph_import;
mod graph_train;
mod graph_util;
mod inputs;
mod learning;
mod loss_cli;
mod one_step;
mod runtime;
mod sam;
mod stage2;
mod train;
