//! `lt-train eval`: evaluate any ONNX image classifier on a dataset's test split.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lt_train::config::{Ep, TrainConfig};
use lt_train::dataset::Dataset;
use lt_train::loader::Normalization;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The classifier: input [N,3,H,W] normalised images, output [N,C] logits (lt-train's model.onnx).
    #[arg(long, value_name = "FILE.onnx")]
    model: PathBuf,
    /// Dataset directory written by `lt-data build`; its test split is evaluated.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Take the input normalisation from this run's run.json (default: mean/std of the
    /// dataset's training subset, which is what lt-train uses).
    #[arg(long, value_name = "RUN")]
    run: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    ep: Ep,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Also write the report and predictions as JSON here.
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let data = Dataset::open(&args.data)?;
    let norm = match &args.run {
        Some(run) => {
            let path = run.join("run.json");
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)?;
            Some(
                serde_json::from_value::<Normalization>(json["normalization"].clone())
                    .with_context(|| format!("{}: field `normalization`", path.display()))?,
            )
        }
        None => None,
    };
    let cfg = TrainConfig { ep: args.ep, ..TrainConfig::default() };
    let device = lt_train::train::resolve_device(&cfg, &super::train_cmd::BarProgress::new(true))?;
    let threads = lt_train::session::default_threads();
    let (report, pred) =
        lt_train::evaluate::evaluate_model(&args.model, &data, norm, &device, threads, args.batch_size)?;
    println!(
        "{} on {} test images: accuracy {:.4}, balanced accuracy {:.4}, macro-F1 {:.4}, G-mean {:.4}",
        args.model.display(),
        pred.index.len(),
        report.accuracy,
        report.balanced_accuracy,
        report.macro_f1,
        report.gmean
    );
    println!("{:>5}  {:<20} {:>8} {:>9} {:>8}", "label", "class", "support", "accuracy", "F1");
    for (c, name) in data.info.class_names.iter().enumerate() {
        println!(
            "{c:>5}  {name:<20} {:>8} {:>9.4} {:>8.4}",
            report.support[c], report.per_class_accuracy[c], report.f1[c]
        );
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({ "model": args.model, "data": args.data, "report": report,
            "predictions": { "index": pred.index, "label": pred.label, "prediction": pred.prediction } });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
