//! `lt-train`: train and evaluate long-tailed image classifiers with onnxruntime.

mod bench_cmd;
mod doctor;
mod eval_cmd;
mod graph_cmd;
mod train_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lt-train",
    version,
    about = "Train and evaluate long-tailed image classifiers with onnxruntime (CPU or CUDA)",
    long_about = "Train and evaluate long-tailed image classifiers with onnxruntime (CPU or CUDA).\n\n\
        Without a subcommand, trains: lt-train --data DIR (--arch NAME | --model FILE.onnx) --out RUN [options]\n\
        Example: lt-train --data out/demo-data --arch densenet-tiny --epochs 5 --weights effective-number --out runs/reweight",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: train_cmd::TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Check the onnxruntime installation: where the library was found, whether it has the
    /// CUDA provider, and that it runs a small graph written by lt-graph.
    Doctor {
        /// Prefer the onnxruntime-gpu install (.ort/gpu) when both are present.
        #[arg(long)]
        gpu: bool,
    },
    /// Write the training-step and evaluation graphs of a model as .onnx files to inspect
    /// (Netron, onnx.checker) without training.
    Graph(graph_cmd::GraphArgs),
    /// Time training steps of a built-in network with device-resident state: images/s,
    /// ms/step, node count, session-creation time; --profile adds the top operators.
    Bench(bench_cmd::BenchArgs),
    /// Time the loader alone: a dataset's training subset read from Parquet, then shuffled,
    /// augmented (crop+flip) and normalised into f32 batches by the background prefetcher.
    BenchLoader(bench_cmd::LoaderBenchArgs),
    /// Train the same network on the same batches on two sides and compare the loss curves:
    /// CUDA against CPU (--ep cuda, the GPU check), or the CUDA gradient formulation against
    /// the CPU one, both on the CPU (--ep cpu).
    Agree(bench_cmd::AgreeArgs),
    /// Evaluate any ONNX image classifier (e.g. a run's model.onnx) on a dataset's test split.
    Eval(eval_cmd::EvalArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Doctor { gpu }) => doctor::doctor(gpu),
        Some(Command::Graph(args)) => graph_cmd::run(&args),
        Some(Command::Bench(args)) => bench_cmd::run(&args),
        Some(Command::BenchLoader(args)) => bench_cmd::run_loader(&args),
        Some(Command::Agree(args)) => bench_cmd::run_agree(&args),
        Some(Command::Eval(args)) => eval_cmd::run(&args),
        None => train_cmd::run(&cli.train),
    }
}
