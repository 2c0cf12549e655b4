use std::process::Command;

use lt_report::input::{find_runs, read_dataset, read_run};

use crate::fixtures::{FIGURES, report, two_runs};

fn python() -> String {
    std::env::var("LT_TEST_PYTHON")
        .expect("LT_TEST_PYTHON is not set: run scripts/test.sh (it installs .venv-test and exports it)")
}

#[test]
fn summary_matches_an_independent_pyarrow_computation() {
    let f = two_runs(10);
    let (out, summary) = report(&f);
    let script = r#"
import json, sys
import numpy as np
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
y = np.asarray(t.column("label").to_pylist()); p = np.asarray(t.column("prediction").to_pylist())
C = 10
recall = np.array([(p[y == c] == c).mean() for c in range(C)])
prec = np.array([(y[p == c] == c).mean() if (p == c).any() else 0.0 for c in range(C)])
f1 = np.where(prec + recall > 0, 2 * prec * recall / np.maximum(prec + recall, 1e-300), 0.0)
print(json.dumps({"accuracy": float((y == p).mean()), "balanced": float(recall.mean()),
                  "macro_f1": float(f1.mean()), "gmean": float(np.prod(recall) ** (1 / C))}))
"#;
    for (dir, run) in f.runs.iter().zip(summary.runs.iter().map(|r| &r.headline)) {
        let o = Command::new(python()).arg("-c").arg(script).arg(dir.join("predictions.parquet")).output().unwrap();
        assert!(o.status.success(), "python: {}", String::from_utf8_lossy(&o.stderr));
        let want: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let close = |a: f64, key: &str| (a - want[key].as_f64().unwrap()).abs() < 1e-9;
        assert!(close(run.accuracy, "accuracy"), "{} vs {want}", run.accuracy);
        assert!(close(run.balanced_accuracy, "balanced"), "{} vs {want}", run.balanced_accuracy);
        assert!(close(run.macro_f1, "macro_f1"), "{} vs {want}", run.macro_f1);
        assert!(close(run.gmean, "gmean"), "{} vs {want}", run.gmean);
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][1]["label"], "run-cb");
    assert_eq!(json["group_names"], serde_json::json!(["head", "mid", "tail", "many", "medium", "few"]));
    assert_eq!(json["shot_splits"][0]["kind"], "thirds");
    assert_eq!(json["shot_splits"][1], serde_json::json!({"kind": "thresholds", "many_above": 100, "few_below": 20}));
}

#[test]
fn run_and_dataset_directories_read_back() {
    let f = two_runs(10);
    let run = read_run(&f.runs[0]).unwrap();
    assert_eq!(run.class_names, f.names);
    assert_eq!(run.epochs(), 6);
    assert_eq!(run.metrics.len(), 12, "6 epochs x (train, test)");
    assert_eq!(run.predictions.label.len(), 1000);
    assert_eq!(run.predictions.scores.len(), 10_000);
    assert_eq!(run.confusion.total(), 1000);
    let d = read_dataset(&f.data).unwrap();
    assert_eq!(d.manifests.len(), 2);
    let (name, none) = &d.manifests[0];
    assert_eq!(name, "none");
    let subset: Vec<f64> = d.subset.iter().map(|&n| n as f64).collect();
    assert_eq!(none, &subset, "visiting the subset as it is: per-epoch counts equal the subset counts");
    let (_, over) = &d.manifests[1];
    let total: f64 = over.iter().sum();
    assert!((total - subset.iter().sum::<f64>()).abs() < 1e-9, "oversampling keeps the epoch length");
    assert!(over[9] > 5.0 * subset[9], "oversampling lifts the tail class: {} vs {}", over[9], subset[9]);
    assert_eq!(find_runs(&f.root).unwrap(), f.runs.iter().rev().cloned().collect::<Vec<_>>(), "sorted: run-cb, run-ce");
}

#[test]
fn the_binary_writes_every_file_from_a_runs_dir() {
    let f = two_runs(10);
    let out = f.root.join("cli-report");
    let o = Command::new(env!("CARGO_BIN_EXE_lt-report"))
        .arg("--runs-dir")
        .arg(&f.root)
        .arg("--out")
        .arg(&out)
        .arg("--data")
        .arg(&f.data)
        .args(["--shots", "thresholds", "--many-above", "1000", "--few-below", "100", "--linear-counts"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    let mut want: Vec<String> = FIGURES.iter().map(|s| s.to_string()).collect();
    want.extend(["index.html", "summary.json", "summary.md"].map(String::from));
    want.sort();
    assert_eq!(files, want, "no temporary files are left behind");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("many % | medium % | few %") && !md.contains("head %"), "--shots thresholds alone: {md}");
    // CIFAR-10-LT counts [5000 .. 50]: > 1000 are 0-3, 100..=1000 are 4-7, < 100 are 8-9.
    assert!(md.contains("more than 1000, 100 to 1000, fewer than 100"), "{md}");
    let dist = std::fs::read_to_string(out.join("class-distribution.svg")).unwrap();
    assert!(dist.contains("linear scale"), "--linear-counts");
}

#[test]
fn help_explains_every_option_and_bad_input_fails_cleanly() {
    let o = Command::new(env!("CARGO_BIN_EXE_lt-report")).arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    for opt in [
        "--runs",
        "--runs-dir",
        "--label",
        "--out",
        "--data",
        "--shots",
        "--many-above",
        "--few-below",
        "--linear-counts",
        "--title",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lt-report"))
        .arg("--runs-dir")
        .arg(empty.path())
        .arg("--out")
        .arg(empty.path().join("r"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no subdirectory holds a run.json"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_lt-report")).args(["--out", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "missing --runs/--runs-dir is a usage error");
}

/// `--data` reads dataset.json as leniently as lt-train does: a hand-made directory without
/// lt-data's provenance fields (source, profile, seed, format_version) is reported on; another
/// format version is refused, naming it.
#[test]
fn a_hand_made_dataset_directory_without_provenance_is_read() {
    let f = two_runs(4);
    let path = f.data.join("dataset.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let full = read_dataset(&f.data).unwrap();
    for key in ["source", "profile", "seed", "format_version"] {
        assert!(json.as_object_mut().unwrap().remove(key).is_some(), "{key} was written");
    }
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let lenient = read_dataset(&f.data).unwrap();
    assert_eq!((lenient.subset, lenient.manifests), (full.subset, full.manifests));
    json["format_version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = read_dataset(&f.data).unwrap_err().to_string();
    assert!(err.contains("format_version 99") && err.contains("dataset.json"), "{err}");
}
