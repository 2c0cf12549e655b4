use std::path::{Path, PathBuf};
use std::process::Command;

use lt_report::input::read_run;
use lt_report::synthetic::{SyntheticRun, class_names, write_run};
use lt_report::{differing_settings, run_labels};
use serde_json::json;

use crate::fixtures::{FIGURES, read_svg, report, two_runs};

#[test]
fn two_runs_that_differ_only_in_the_loss_appear_in_every_figure() {
    let f = two_runs(10);
    let (out, summary) = report(&f);
    // `out` differs too but names each run's own directory: it is not a setting.
    assert_eq!(summary.differing_settings, vec!["train.loss".to_string()]);
    // Without a label in run.json a run is named by its directory.
    let labels: Vec<&str> = summary.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["run-ce", "run-cb"]);
    for file in FIGURES {
        let svg = read_svg(&out, file);
        for label in &labels {
            assert!(
                svg.has_text_containing(label),
                "{file} does not show run {label:?}: {:?}",
                svg.texts.iter().map(|t| &t.content).collect::<Vec<_>>()
            );
        }
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(
            "| run | train.loss | overall % | balanced % | head % | mid % | tail % | many % | medium % | few % | G-mean | macro-F1 | ECE | epochs run |"
        ),
        "{md}"
    );
    assert!(md.contains("| run-ce | ce |") && md.contains("| run-cb | cb |"), "{md}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for label in &labels {
        assert!(html.contains(&format!("<td>{label}</td>")), "index.html table lacks {label}");
    }
    assert_eq!(html.matches("<svg").count(), FIGURES.len(), "index.html inlines every figure once");
}

#[test]
fn explicit_labels_win_and_duplicates_are_told_apart() {
    let f = two_runs(10);
    for (dir, label) in f.runs.iter().zip(["baseline", "baseline"]) {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["label"] = label.into();
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let (_, summary) = report(&f);
    let labels: Vec<&str> = summary.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["baseline (run-ce)", "baseline (run-cb)"]);
}

#[test]
fn settings_read_as_written() {
    // lt-train widens f32 options to f64 in run.json: 0.05f32 is 0.05000000074505806.
    let f = two_runs(10);
    for (dir, lr) in f.runs.iter().zip([f64::from(0.05f32), 0.1]) {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["config"]["train"]["lr"] = lr.into();
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let (_, summary) = report(&f);
    let lr: Vec<&str> = summary.runs.iter().map(|r| r.settings["train.lr"].as_str()).collect();
    assert_eq!(lr, vec!["0.05", "0.1"]);
    assert_eq!(summary.differing_settings, vec!["train.loss".to_string(), "train.lr".to_string()]);
}

/// Runs under `root/NAME` with these `config`s (as lt-train writes it: TrainConfig's fields at
/// the top level) and no `label` in run.json.
fn runs_with_configs(root: &Path, runs: &[(&str, serde_json::Value)]) -> Vec<PathBuf> {
    runs.iter()
        .enumerate()
        .map(|(i, (name, config))| {
            let dir = root.join(name);
            let mut run = SyntheticRun::long_tailed(class_names(10), i as u64 + 1);
            run.epochs = 2;
            run.test_per_class = 20;
            run.config = config.clone();
            run.config["out"] = dir.display().to_string().into();
            write_run(&dir, &run).unwrap();
            dir
        })
        .collect()
}

fn lt_report(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lt-report")).args(args).output().unwrap()
}

#[test]
fn the_binary_labels_runs_by_their_directory_names_and_shows_settings_that_act() {
    let tmp = tempfile::tempdir().unwrap();
    // The example: a β on an unweighted run, which the runs used to be labelled by.
    let common = json!({"loss": "ce", "resample": null, "drw": null, "focal_gamma": 1.0, "tau": 1.0});
    let with = |weights: &str, beta: f64| {
        let mut c = common.clone();
        c["weights"] = weights.into();
        c["beta"] = beta.into();
        c
    };
    let runs = runs_with_configs(
        tmp.path(),
        &[("baseline", with("none", 0.9999)), ("reweight", with("effective-number", 0.99))],
    );
    let out = tmp.path().join("report");
    let o =
        lt_report(&["--runs".as_ref(), runs[0].as_os_str(), runs[1].as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let labels: Vec<&str> = json["runs"].as_array().unwrap().iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["baseline", "reweight"]);
    // β acts only on the re-weighted run: the baseline's β is not shown.
    assert_eq!(json["differing_settings"], json!(["beta", "weights"]));
    assert_eq!(json["runs"][0]["settings"], json!({"beta": "–", "weights": "none"}));
    assert_eq!(json["runs"][1]["settings"], json!({"beta": "0.99", "weights": "effective-number"}));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| baseline | – | none |") && md.contains("| reweight | 0.99 | effective-number |"), "{md}");
    for file in FIGURES {
        let svg = read_svg(&out, file);
        assert!(svg.has_text_containing("baseline") && svg.has_text_containing("reweight"), "{file}");
        assert!(!svg.has_text_containing("beta="), "{file} still labels runs by settings");
    }

    // --label overrides, one per run in the order of --runs. (`--shots auto`, which lt run
    // passes, is both splits.)
    let o = lt_report(&[
        "--runs".as_ref(),
        runs[0].as_os_str(),
        runs[1].as_os_str(),
        "--shots".as_ref(),
        "auto".as_ref(),
        "--label".as_ref(),
        "CE".as_ref(),
        "--label".as_ref(),
        "CE + CB weights".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["label"], "CE");
    assert_eq!(json["runs"][1]["label"], "CE + CB weights");
    assert_eq!(json["group_names"], json!(["head", "mid", "tail", "many", "medium", "few"]));

    let mut args: Vec<&std::ffi::OsStr> = vec!["--runs".as_ref(), runs[0].as_os_str(), "--out".as_ref()];
    args.push(out.as_os_str());
    args.extend(["--label", "a", "--label", "b"].map(std::ffi::OsStr::new));
    let o = lt_report(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 labels for 1 runs"), "{err}");
}

fn settings_of(configs: &[serde_json::Value]) -> (Vec<String>, Vec<Vec<String>>) {
    let tmp = tempfile::tempdir().unwrap();
    let named: Vec<(String, serde_json::Value)> =
        configs.iter().enumerate().map(|(i, c)| (format!("run-{i}"), c.clone())).collect();
    let named: Vec<(&str, serde_json::Value)> = named.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let runs: Vec<_> = runs_with_configs(tmp.path(), &named).iter().map(|d| read_run(d).unwrap()).collect();
    let s = differing_settings(&runs);
    let values = s.values.iter().map(|v| s.keys.iter().map(|k| v[k].clone()).collect()).collect();
    (s.keys, values)
}

/// Two configs, the keys expected in the table and each run's values of them.
type SettingsCase = ([serde_json::Value; 2], Vec<&'static str>, Vec<Vec<&'static str>>);

#[test]
fn a_setting_that_has_no_effect_is_not_shown() {
    let cases: Vec<SettingsCase> = vec![
        // β without effective-number weights or resampling.
        ([json!({"weights": "none", "beta": 0.9999}), json!({"weights": "none", "beta": 0.99})], vec![], vec![]),
        (
            [
                json!({"weights": "none", "resample": null, "beta": 0.9999}),
                json!({"weights": "none", "resample": "effective-number", "beta": 0.99}),
            ],
            vec!["beta", "resample"],
            vec![vec!["–", "–"], vec!["0.99", "effective-number"]],
        ),
        // Focal γ only with the focal loss; LDAM's margin and scale only with LDAM.
        (
            [json!({"loss": "ce", "focal_gamma": 1.0}), json!({"loss": "focal", "focal_gamma": 2.0})],
            vec!["focal_gamma", "loss"],
            vec![vec!["–", "ce"], vec!["2", "focal"]],
        ),
        (
            [
                json!({"loss": "ce", "ldam_max_margin": 0.5, "ldam_scale": 30.0}),
                json!({"loss": "ce", "ldam_max_margin": 0.3, "ldam_scale": 10.0}),
            ],
            vec![],
            vec![],
        ),
        // τ only with balanced softmax (or logit adjustment).
        (
            [json!({"loss": "balanced-softmax", "tau": 1.0}), json!({"loss": "balanced-softmax", "tau": 2.0})],
            vec!["tau"],
            vec![vec!["1"], vec!["2"]],
        ),
        (
            [json!({"loss": "ce", "tau": 1.0}), json!({"loss": "ldam", "tau": 2.0})],
            vec!["loss"],
            vec![vec!["ce"], vec!["ldam"]],
        ),
        // Label smoothing only with cross-entropy.
        (
            [json!({"loss": "focal", "label_smoothing": 0.0}), json!({"loss": "focal", "label_smoothing": 0.1})],
            vec![],
            vec![],
        ),
        // The DRW epoch and the weights' normalisation only with weights.
        (
            [
                json!({"weights": "none", "drw": null, "weights_normalize": "classes"}),
                json!({"weights": "none", "drw": 160, "weights_normalize": "none"}),
            ],
            vec![],
            vec![],
        ),
        (
            [json!({"weights": "inverse", "drw": null}), json!({"weights": "inverse", "drw": 160})],
            vec!["drw"],
            vec![vec!["–"], vec!["160"]],
        ),
        // Nested configs follow the same rules within their table.
        (
            [json!({"train": {"weights": "none", "beta": 0.9}}), json!({"train": {"weights": "none", "beta": 0.8}})],
            vec![],
            vec![],
        ),
        // A config that lacks the governing setting keeps the setting.
        ([json!({"beta": 0.9}), json!({"beta": 0.8})], vec!["beta"], vec![vec!["0.9"], vec!["0.8"]]),
    ];
    for (configs, keys, values) in cases {
        let (got_keys, got_values) = settings_of(&configs);
        assert_eq!(got_keys, keys, "{configs:?}");
        if keys.is_empty() {
            assert!(got_values.iter().all(|v| v.is_empty()), "{configs:?}");
        } else {
            assert_eq!(got_values, values, "{configs:?}");
        }
    }
}

#[test]
fn labels_fall_back_to_the_directory_and_stay_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = runs_with_configs(&tmp.path().join("a"), &[("run", json!({}))]);
    dirs.extend(runs_with_configs(&tmp.path().join("b"), &[("run", json!({}))]));
    dirs.extend(runs_with_configs(tmp.path(), &[("other", json!({}))]));
    let runs: Vec<_> = dirs.iter().map(|d| read_run(d).unwrap()).collect();
    // Same directory name: told apart by the path.
    let labels = run_labels(&runs, &[]);
    assert_eq!(labels[0], format!("run ({})", dirs[0].display()));
    assert_eq!(labels[1], format!("run ({})", dirs[1].display()));
    assert_eq!(labels[2], "other");
    // An override wins; an empty one is no override; a shared one gets the directory name.
    let labels = run_labels(&runs, &["x".to_string(), String::new(), "x".to_string()]);
    assert_eq!(labels, ["x (run)", "run", "x (other)"]);
}
