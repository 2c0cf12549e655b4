//! `lt-train eval`: evaluate any ONNX image classifier on a dataset's test split, optionally
//! with post-hoc logit adjustment (τ given, or chosen on a run's validation rows).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use lt_eval::ClassificationReport;
use lt_format::RunRecord;
use lt_format::cli::vocab;
use lt_train::config::{Ep, TrainConfig};
use lt_train::dataset::{Dataset, ValidationSource};
use lt_train::evaluate::{Classifier, classify, logit_adjustment, sweep_logit_adjustment};
use lt_train::loader::{Normalization, NormalizationOf};

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
    #[arg(long, value_parser = vocab::<Ep>(), default_value = "cpu")]
    ep: Ep,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Also write the report and predictions as JSON here.
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// Post-hoc logit adjustment (Menon et al. 2021): predict argmax z_c − T·log π_c, π the
    /// training class prior (the run's train_counts with --run, else the dataset's subset).
    #[arg(long, value_name = "T", allow_negative_numbers = true, conflicts_with = "logit_adjust_sweep")]
    logit_adjust: Option<f64>,
    /// Choose T of post-hoc logit adjustment among these values by balanced accuracy on
    /// validation images, never on test: the dataset's validation split (`lt-data build
    /// --val-per-class`), else the rows a `--val-fraction` run held out (--run); reports the
    /// chosen T and the test metrics at it.
    #[arg(long, value_name = "T,T,...", value_delimiter = ',', allow_negative_numbers = true)]
    logit_adjust_sweep: Option<Vec<f64>>,
    /// Do not check the dataset's files against the sha256 hashes in its dataset.json (as
    /// `lt-train --no-verify`): by default a file changed since the build stops the evaluation.
    #[arg(long)]
    no_verify: bool,
}

/// The run's record (run.json), read through lt-format.
fn read_run(run: &Path) -> Result<RunRecord> {
    Ok(RunRecord::read(run)?)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let data = Dataset::open_checked(&args.data, !args.no_verify)?;
    let c = data.num_classes();
    let record = args.run.as_deref().map(read_run).transpose()?;
    if let Some(r) = &record
        && r.train_counts.len() != c
    {
        anyhow::bail!("the run trained on {} classes, the dataset has {c}", r.train_counts.len());
    }
    let norm = record.as_ref().map(|r| r.normalization.clone());
    let cfg = TrainConfig { ep: args.ep, ..TrainConfig::default() };
    let device = lt_train::train::resolve_device(&cfg, &super::train_cmd::BarProgress::new(true))?;
    let threads = lt_train::device::default_threads();
    let norm = norm.unwrap_or_else(|| Normalization::of(&data.train, &data.subset, data.info.image_shape));
    let mut classifier = Classifier::open(&args.model, &data, &device, threads, args.batch_size)?;
    let test: Vec<u32> = (0..data.test.len() as u32).collect();
    let test_logits = classifier.logits(&data.test, &test, norm.clone())?;

    // The training prior of post-hoc adjustment: the run's own counts (its subset less the
    // rows it held out), else the dataset's subset.
    let prior_counts = match &record {
        Some(r) => r.train_counts.clone(),
        None => {
            let mut n = vec![0u64; c];
            data.subset.iter().for_each(|&i| n[data.train.labels[i as usize] as usize] += 1);
            n
        }
    };
    let mut adjust_json = serde_json::Value::Null;
    let tau = match (&args.logit_adjust, &args.logit_adjust_sweep) {
        (Some(t), _) => Some(*t),
        (None, Some(taus)) => {
            let (val_idx, from) = validation_rows(args, &data, record.as_ref())?;
            let val_logits = classifier.logits(&data.train, &val_idx, norm)?;
            let sweep = sweep_logit_adjustment(&val_logits, &prior_counts, taus)?;
            println!("post-hoc logit adjustment, T chosen on {} {from}:", val_idx.len());
            println!("{:>8} {:>13} {:>18}", "T", "val accuracy", "val balanced acc.");
            for (t, r) in &sweep.validation {
                let mark = if *t == sweep.chosen { "  <- chosen" } else { "" };
                println!("{t:>8} {:>13.4} {:>18.4}{mark}", r.accuracy, r.balanced_accuracy);
            }
            let rows: Vec<serde_json::Value> = sweep
                .validation
                .iter()
                .map(|(t, r)| serde_json::json!({ "tau": t, "accuracy": r.accuracy, "balanced_accuracy": r.balanced_accuracy }))
                .collect();
            adjust_json = serde_json::json!({ "chosen_on": from, "validation_images": val_idx.len(), "sweep": rows });
            Some(sweep.chosen)
        }
        (None, None) => None,
    };
    let shift = tau.map(|t| logit_adjustment(&prior_counts, t)).transpose()?;
    let (report, pred) = classify(&test_logits, shift.as_deref());
    if let Some(t) = tau {
        println!("test metrics with post-hoc logit adjustment T = {t} (prior from training counts {prior_counts:?})");
        let extra = serde_json::json!({ "tau": t, "prior_counts": prior_counts });
        match &mut adjust_json {
            serde_json::Value::Object(m) => m.extend(extra.as_object().cloned().unwrap_or_default()),
            other => *other = extra,
        }
    }
    print_report(args, &data, &report, pred.index.len());
    if let Some(out) = &args.out {
        let json = serde_json::json!({ "model": args.model, "data": args.data, "report": report,
            "logit_adjustment": adjust_json,
            "predictions": { "index": pred.index, "label": pred.label, "prediction": pred.prediction } });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// The rows of the train split to choose T on, and where they come from: the dataset's
/// validation split (`lt-data build --val-per-class`), else the `--val-fraction` rows the run
/// of `--run` held out, carved again from its seed, as lt-train chose them. Never test rows.
fn validation_rows(args: &EvalArgs, data: &Dataset, record: Option<&RunRecord>) -> Result<(Vec<u32>, String)> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "--logit-adjust-sweep chooses T on validation data, never on the test split, and {why}; \
             build the dataset with `lt-data build --val-per-class N`, or give --run RUN of a run trained \
             with --val-fraction F > 0 on this dataset, or give a fixed --logit-adjust T"
        )
    };
    let cfg = TrainConfig {
        val_fraction: record.map_or(0.0, |r| r.config.val_fraction),
        seed: record.map_or(0, |r| r.config.seed),
        ..TrainConfig::default()
    };
    let split = data.training_split(&cfg);
    if let (Some(run), Some(r)) = (&args.run, record) {
        if r.dataset.content_hash != data.content_hash {
            return Err(refuse(&format!("{} trained on another dataset (content hash differs)", run.display())));
        }
        let mut train_counts = vec![0u64; data.num_classes()];
        split.train.iter().for_each(|&i| train_counts[data.train.labels[i as usize] as usize] += 1);
        if train_counts != r.train_counts {
            return Err(refuse(&format!(
                "the training images of {} come out as {train_counts:?} per class, not the run's {:?}",
                run.display(),
                r.train_counts
            )));
        }
    }
    let from = match split.source {
        ValidationSource::Dataset { per_class } => {
            format!(
                "images of the dataset's validation split ({per_class} per class, held out before the long-tail cut)"
            )
        }
        ValidationSource::Carved { fraction } => match &args.run {
            Some(run) => format!("validation images held out by {} (--val-fraction {fraction})", run.display()),
            None => return Err(refuse("no --run names the validation rows")),
        },
        ValidationSource::None => {
            return Err(refuse(&match &args.run {
                Some(run) => format!("{} held out no validation rows (val_fraction 0)", run.display()),
                None => "the dataset has no validation split and no --run names validation rows".into(),
            }));
        }
    };
    Ok((split.validation, from))
}

fn print_report(args: &EvalArgs, data: &Dataset, report: &ClassificationReport, images: usize) {
    println!(
        "{} on {images} test images: accuracy {:.4}, balanced accuracy {:.4}, macro-F1 {:.4}, G-mean {:.4}",
        args.model.display(),
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
}
