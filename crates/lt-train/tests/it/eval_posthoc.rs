//! `lt-train eval --logit-adjust T` and `--logit-adjust-sweep`: post-hoc logit adjustment of a
//! trained run, with T chosen on the run's validation rows and never on test.

use std::path::Path;

use super::fixture::{built, lt_train, p, read_json, stderr, train_tiny, write_dataset};

/// Trains a short run on a 4-class fixture, `val_fraction` of each class held out.
fn trained_run(dir: &Path, val_fraction: &str) -> (String, String) {
    let data = dir.join("data");
    if !data.exists() {
        write_dataset(&data, &[48, 32, 16, 8], 10, 7);
    }
    let run = dir.join(format!("run-{val_fraction}"));
    let o = train_tiny(&data, &run, 16, 2, &["--val-fraction", val_fraction]);
    assert!(o.status.success(), "{}", stderr(&o));
    (p(&data).to_string(), p(&run).to_string())
}

/// Runs `lt-train eval` on the run's model with `extra` flags; the JSON report it wrote.
fn eval(dir: &Path, data: &str, run: &str, extra: &[&str], name: &str) -> serde_json::Value {
    let out = dir.join(format!("{name}.json"));
    let model = Path::new(run).join("model.onnx");
    let mut args = vec!["eval", "--model", p(&model), "--data", data, "--run", run, "--out", p(&out)];
    args.extend(extra);
    let o = lt_train(&args);
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    read_json(&out)
}

#[test]
fn posthoc_logit_adjustment_shifts_predictions_and_the_sweep_chooses_on_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path(), "0.25");
    let run_json = read_json(&Path::new(&run).join("run.json"));
    let plain = eval(dir.path(), &data, &run, &[], "plain");
    // T = 0 is no adjustment.
    let zero = eval(dir.path(), &data, &run, &["--logit-adjust", "0"], "zero");
    assert_eq!(zero["predictions"], plain["predictions"]);
    assert_eq!(zero["logit_adjustment"]["prior_counts"], run_json["train_counts"]);
    // A huge T makes −T·log π dominate: every image goes to the rarest training class.
    let counts: Vec<u64> = serde_json::from_value(run_json["train_counts"].clone()).unwrap();
    let rarest = (0..counts.len()).min_by_key(|&c| counts[c]).unwrap();
    let huge = eval(dir.path(), &data, &run, &["--logit-adjust", "200"], "huge");
    let preds: Vec<usize> = serde_json::from_value(huge["predictions"]["prediction"].clone()).unwrap();
    assert!(!preds.is_empty() && preds.iter().all(|&c| c == rarest), "{preds:?} (rarest class {rarest})");

    let sweep = eval(dir.path(), &data, &run, &["--logit-adjust-sweep", "0,0.5,1,2"], "sweep");
    let la = &sweep["logit_adjustment"];
    let val_images: u64 = serde_json::from_value::<Vec<u64>>(run_json["val_counts"].clone()).unwrap().iter().sum();
    assert!(val_images > 0);
    assert_eq!(la["validation_images"], val_images, "{la}");
    assert_eq!(la["sweep"].as_array().unwrap().len(), 4, "{la}");
    let chosen = la["tau"].as_f64().unwrap();
    // The chosen T has the best validation balanced accuracy (the first such in the list).
    let best = la["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tau"].as_f64().unwrap(), r["balanced_accuracy"].as_f64().unwrap()))
        .fold(None, |b: Option<(f64, f64)>, (t, a)| if b.is_none_or(|(_, ba)| a > ba) { Some((t, a)) } else { b });
    assert_eq!(Some(chosen), best.map(|b| b.0), "{la}");
    // The test metrics reported are those at the chosen T.
    let fixed = eval(dir.path(), &data, &run, &["--logit-adjust", &chosen.to_string()], "fixed");
    assert_eq!(sweep["report"], fixed["report"]);
    assert_eq!(sweep["predictions"], fixed["predictions"]);
}

#[test]
fn the_sweep_refuses_to_choose_without_validation_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path(), "0");
    let model = Path::new(&run).join("model.onnx");
    let cases: [(&[&str], &str); 3] = [
        (&["--run", &run, "--logit-adjust-sweep", "0,1"], "held out no validation rows"),
        (&["--logit-adjust-sweep", "0,1"], "no --run names"),
        (&["--logit-adjust", "1", "--logit-adjust-sweep", "0,1"], "cannot be used with"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["eval", "--model", p(&model), "--data", &data];
        args.extend(extra);
        let o = lt_train(&args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{extra:?} should fail");
        assert!(e.contains(needle), "{extra:?}: expected `{needle}` in: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn the_sweep_chooses_on_the_datasets_validation_split_without_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let meta = built(&data, 4, Vec::new());
    let classes = meta.class_names.len();
    let run = dir.path().join("run");
    let o = train_tiny(&data, &run, 16, 1, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("sweep.json");
    let model = run.join("model.onnx");
    let o =
        lt_train(&["eval", "--model", p(&model), "--data", p(&data), "--logit-adjust-sweep", "0,1", "--out", p(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let la = read_json(&out)["logit_adjustment"].clone();
    assert_eq!(la["validation_images"], 4 * classes as u64, "{la}");
    assert!(la["chosen_on"].as_str().unwrap().contains("the dataset's validation split"), "{la}");
}
