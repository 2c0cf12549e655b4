//! Runs of one experiment (the same label, different seeds) reported as mean ± std; runs that
//! only share a directory name, or a label but not their settings, are never averaged.

use std::path::{Path, PathBuf};

use lt_report::input::read_run;
use lt_report::synthetic::{SyntheticRun, class_names, write_run};
use lt_report::{Options, Summary, generate};
use serde_json::json;

use crate::fixtures::{FIGURES, read_svg};

/// `experiments` × `seeds` synthetic runs under `root/NAME/seed-S`, labelled NAME as `lt run`
/// labels them, differing in the loss between experiments and in the seed within one.
fn seeded_runs(root: &Path, experiments: &[(&str, &str, f64)], seeds: &[u64]) -> Vec<PathBuf> {
    let names = class_names(10);
    let mut dirs = Vec::new();
    for &(name, loss, skill) in experiments {
        for &seed in seeds {
            let mut run = SyntheticRun::long_tailed(names.clone(), 100 + seed);
            run.epochs = 5 + seed as u32;
            run.skill = skill;
            run.label = Some(name.to_string());
            let dir = root.join(name).join(format!("seed-{seed}"));
            // The epochs run differ by seed (as a run stopped early would), the settings do not.
            run.config = json!({"out": dir.display().to_string(), "seed": seed, "loss": loss});
            write_run(&dir, &run).unwrap();
            dirs.push(dir);
        }
    }
    dirs
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

fn generate_into(runs: Vec<PathBuf>, out: &Path) -> Summary {
    generate(&Options::new(runs, out)).unwrap()
}

#[test]
fn two_experiments_of_three_seeds_report_mean_and_sample_std() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = seeded_runs(tmp.path(), &[("ce", "ce", 0.7), ("ldam-drw", "ldam", 0.85)], &[0, 1, 2]);
    let out = tmp.path().join("report");
    let summary = generate_into(runs.clone(), &out);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let experiments = json["experiments"].as_array().unwrap();
    assert_eq!(experiments.len(), 2);
    // The seed is what varies within an experiment: it is no differing setting of the table.
    assert_eq!(json["differing_settings"], json!(["loss"]));
    for (e, (label, group)) in experiments.iter().zip([("ce", &runs[..3]), ("ldam-drw", &runs[3..])]) {
        assert_eq!(e["label"], label);
        assert_eq!(e["n"], 3);
        let dirs: Vec<PathBuf> = e["runs"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().into()).collect();
        assert_eq!(dirs, group);
        // Each seed read and evaluated on its own, then the statistics computed here.
        let read: Vec<_> = group.iter().map(|d| read_run(d).unwrap()).collect();
        for (field, values) in [
            ("accuracy", read.iter().map(|r| r.report.accuracy).collect::<Vec<_>>()),
            ("balanced_accuracy", read.iter().map(|r| r.report.balanced_accuracy).collect()),
            ("macro_f1", read.iter().map(|r| r.report.macro_f1).collect()),
            ("gmean", read.iter().map(|r| r.report.gmean).collect()),
            ("ece", read.iter().map(|r| r.ece).collect()),
        ] {
            let (mean, std) = mean_std(&values);
            let got = &e[field];
            assert!(std > 0.0, "{label} {field}: the seeds must differ for the test to mean anything");
            assert!(close(got["mean"].as_f64().unwrap(), mean), "{label} {field}: {got} vs mean {mean}");
            assert!(close(got["std"].as_f64().unwrap(), std), "{label} {field}: {got} vs std {std}");
            assert_eq!(got["n"], 3);
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(close(got["min"].as_f64().unwrap(), min), "{label} {field}: {got}");
        }
        // The tail class: per-class spreads are by label.
        let tail: Vec<f64> = read.iter().map(|r| r.report.per_class_accuracy[9]).collect();
        let (mean, std) = mean_std(&tail);
        assert!(close(e["per_class_accuracy"][9]["mean"].as_f64().unwrap(), mean));
        assert!(close(e["per_class_accuracy"][9]["std"].as_f64().unwrap(), std));
        // Both experiments ran seeds 0, 1, 2: the seed is no differing setting.
        assert_eq!(e["settings"], json!({"loss": if label == "ce" { "ce" } else { "ldam" }}), "{e}");
        assert_eq!(e["epochs"]["min"], 5.0);
        assert_eq!(e["epochs"]["max"], 7.0);
    }
    // The per-run entries stay, each with its experiment's label.
    assert_eq!(summary.runs.len(), 6);
    assert!(
        summary.runs[..3].iter().all(|r| r.label == "ce") && summary.runs[3..].iter().all(|r| r.label == "ldam-drw")
    );

    // summary.md: one row per experiment, `mean ± std` in percent, the number of seeds.
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let e = &summary.experiments[1];
    let row = format!(
        "| ldam-drw (n=3) | ldam | {:.1} ± {:.1} | {:.1} ± {:.1} |",
        100.0 * e.headline.accuracy.mean,
        100.0 * e.headline.accuracy.std.unwrap(),
        100.0 * e.headline.balanced_accuracy.mean,
        100.0 * e.headline.balanced_accuracy.std.unwrap()
    );
    assert!(md.contains(&row), "{row} not in\n{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| ce (n=3) |")).count(), 1, "{md}");
    assert!(md.contains("mean ± sample standard deviation"), "{md}");
    assert!(md.contains("| 5–7 |"), "epochs run as a range: {md}");

    // Figures: one series per experiment; spreads are said in the captions and drawn.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<td>ldam-drw (n=3)</td>"), "index.html");
    assert!(html.contains("6 runs (2 experiments)"));
    assert!(html.contains("whiskers ± one sample standard deviation") && html.contains("min–max"));
    for file in FIGURES {
        let svg = read_svg(&out, file);
        assert!(svg.has_text_containing("ldam-drw"), "{file}");
        assert!(!svg.has_text_containing("seed-"), "{file} names a seed's directory");
    }
    let confusion = read_svg(&out, "confusion.svg");
    assert_eq!(confusion.texts.iter().filter(|t| t.content == "predicted").count(), 2, "one panel per experiment");
    let per_class = std::fs::read_to_string(out.join("per-class-accuracy.svg")).unwrap();
    let curves = std::fs::read_to_string(out.join("curves-accuracy.svg")).unwrap();
    let single = tempfile::tempdir().unwrap();
    let one_each = seeded_runs(single.path(), &[("ce", "ce", 0.7), ("ldam-drw", "ldam", 0.85)], &[0]);
    generate_into(one_each, &single.path().join("report"));
    let per_class_single = std::fs::read_to_string(single.path().join("report/per-class-accuracy.svg")).unwrap();
    let curves_single = std::fs::read_to_string(single.path().join("report/curves-accuracy.svg")).unwrap();
    // Whiskers: 3 paths per class and experiment; bands: one polygon per experiment and split.
    assert!(
        per_class.matches("<polyline").count() >= per_class_single.matches("<polyline").count() + 3 * 10 * 2,
        "per-class accuracy draws no whiskers"
    );
    assert_eq!(curves.matches("<polygon").count(), curves_single.matches("<polygon").count() + 2 * 2);
}

#[test]
fn one_run_per_experiment_has_no_spread_and_the_plain_table() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = seeded_runs(tmp.path(), &[("ce", "ce", 0.7), ("ldam-drw", "ldam", 0.85)], &[0]);
    let out = tmp.path().join("report");
    let summary = generate_into(runs.clone(), &out);
    assert_eq!(summary.experiments.len(), 2);
    for (e, r) in summary.experiments.iter().zip(&summary.runs) {
        assert_eq!(e.n, 1);
        assert_eq!(e.headline.accuracy.std, None);
        assert_eq!(e.headline.accuracy.mean, r.headline.accuracy);
        assert_eq!(e.headline.balanced_accuracy.mean, r.headline.balanced_accuracy);
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(!md.contains('±') && !md.contains("(n="), "{md}");
    assert!(md.contains(&format!("| ce | ce | {:.1} |", 100.0 * summary.runs[0].headline.accuracy)), "{md}");
    assert!(md.contains("Test-set metrics of the final predictions."));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(json["experiments"][0]["accuracy"]["std"].is_null());
}

#[test]
fn runs_named_by_their_directory_are_never_merged() {
    // Two experiments' seed-0 runs without a label: both directories are named `seed-0`.
    let tmp = tempfile::tempdir().unwrap();
    let runs = seeded_runs(tmp.path(), &[("ce", "ce", 0.7), ("cb", "ce", 0.75)], &[0]);
    for dir in &runs {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("label");
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let summary = generate_into(runs.clone(), &tmp.path().join("report"));
    assert_eq!(summary.experiments.len(), 2);
    assert!(summary.experiments.iter().all(|e| e.n == 1));
    assert_ne!(summary.experiments[0].label, summary.experiments[1].label);

    // --label gives them one name: now they are seeds of one experiment (their settings agree).
    let mut options = Options::new(runs, tmp.path().join("report"));
    options.labels = vec!["ce".into(), "ce".into()];
    let summary = generate(&options).unwrap();
    assert_eq!(summary.experiments.len(), 1);
    assert_eq!(summary.experiments[0].n, 2);
}

#[test]
fn runs_sharing_a_label_but_not_their_settings_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = seeded_runs(tmp.path(), &[("a", "ce", 0.7), ("b", "focal", 0.75)], &[0, 1]);
    let mut options = Options::new(runs, tmp.path().join("report"));
    options.labels = vec!["same".into(); 4];
    let summary = generate(&options).unwrap();
    let labels: Vec<(&str, usize)> = summary.experiments.iter().map(|e| (e.label.as_str(), e.n)).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.iter().all(|&(l, n)| l.starts_with("same (") && n == 2), "{labels:?}");
}

#[test]
fn the_table_says_which_rule_chose_each_experiments_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = seeded_runs(tmp.path(), &[("ce", "ce", 0.7), ("ldam-drw", "ldam", 0.85)], &[0, 1]);
    for dir in &runs[2..] {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["selection"] = json!({"rule": "best-validation-balanced-accuracy", "epoch": 3, "validation": "dataset"});
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let out = tmp.path().join("report");
    let summary = generate_into(runs, &out);
    assert_eq!(summary.experiments[0].protocol, "last epoch");
    assert_eq!(summary.experiments[1].protocol, "best validation balanced accuracy on the dataset's validation split");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(
            "Reported epoch (the test split never chooses it): ce: last epoch; ldam-drw: best validation balanced accuracy on the dataset's validation split."
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("ldam-drw: best validation balanced accuracy on the dataset&#39;s validation split"));
}
