//! Training learns, and a remedy for imbalance lifts the tail: lt-data's synthetic set made
//! long-tailed (exp profile, IF=100, as CIFAR-10-LT), densenet-tiny on CPU with the demo's
//! settings, baseline against class-balanced resampling and the VS loss, compared on the
//! (balanced) test split.

use std::path::Path;

use lt_data::build::{BuildConfig, ProfileSpec, build};
use lt_data::{NoProgress, Profile, SourceOptions, SourceSpec, Strategy};
use lt_train::config::{LossKind, TrainConfig};
use lt_train::schedule::Schedule;
use lt_train::train::{Silent, run};

const PER_CLASS: u64 = 2000;
const EPOCHS: usize = 6;

fn dataset(dir: &Path) {
    dataset_of(dir, PER_CLASS, 100, 100.0, EPOCHS);
}

/// `per_class` synthetic images per class (`test` per class in the test split), made
/// long-tailed by the exp profile at `imbalance`, with manifests for `epochs`.
fn dataset_of(dir: &Path, per_class: u64, test: u64, imbalance: f64, epochs: usize) {
    let cfg = BuildConfig {
        source_text: format!("synthetic:{per_class}"),
        source: SourceSpec::Synthetic(per_class),
        source_options: SourceOptions { test_per_class: test, ..SourceOptions::default() },
        profile: ProfileSpec::Ready(Profile::Exp { imbalance, n_max: None, shuffle_classes: false }),
        seed: 0,
        val_per_class: 0,
        strategies: vec![Strategy::Instance, Strategy::ClassBalanced],
        epochs: epochs as u32,
        out: dir.to_path_buf(),
        force: false,
    };
    build(&cfg, &NoProgress).unwrap();
}

/// (balanced accuracy, mean accuracy of the three rarest classes) of a run.
fn train(data: &Path, out: &Path, resample: Option<&str>) -> (f64, f64) {
    train_with(data, out, resample, |_| {})
}

/// As [`train`], with `recipe` changing the settings.
fn train_with(data: &Path, out: &Path, resample: Option<&str>, recipe: impl FnOnce(&mut TrainConfig)) -> (f64, f64) {
    let mut cfg = TrainConfig {
        data: data.to_path_buf(),
        arch: Some("densenet-tiny".into()),
        out: out.to_path_buf(),
        epochs: EPOCHS,
        batch_size: 64,
        lr: 0.1,
        schedule: Schedule::Cosine,
        warmup: 1,
        resample: resample.map(String::from),
        threads: Some(2),
        ..TrainConfig::default()
    };
    recipe(&mut cfg);
    let summary = run(&cfg, false, false, &Silent).unwrap();
    let f = &summary.final_metrics;
    (f.balanced, f.per_class[7..].iter().sum::<f64>() / 3.0)
}

#[test]
fn class_balanced_resampling_lifts_the_tail_classes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data);
    let (base_bal, base_tail) = train(&data, &dir.path().join("base"), None);
    let (rs_bal, rs_tail) = train(&data, &dir.path().join("resample"), Some("class-balanced"));
    eprintln!("balanced / tail accuracy: baseline {base_bal:.3} / {base_tail:.3}, resample {rs_bal:.3} / {rs_tail:.3}");
    // The model learns: above the 10% of chance even for the baseline on a balanced test set.
    assert!(base_bal > 0.15, "baseline balanced accuracy {base_bal}");
    // What resampling is for: the tail. After 6 epochs the baseline's balanced accuracy moves
    // by ±0.1 with rounding-level changes to the graph (0.23 and 0.37 were both seen), the
    // tail's does not (0.00 in both, against 0.36-0.39 with resampling).
    assert!(rs_bal > base_bal, "resample balanced accuracy {rs_bal} vs baseline {base_bal}");
    assert!(rs_tail > base_tail + 0.2, "resample tail accuracy {rs_tail} vs baseline {base_tail}");

    // One of the newer recipes: the VS loss (Kini et al. 2021; γ 0.2, τ 1 as in its CIFAR-LT
    // runs) moves the decision boundary toward the head, and the tail gains.
    let (vs_bal, vs_tail) = train_with(&data, &dir.path().join("vs"), None, |c| {
        c.loss = LossKind::Vs;
        c.vs_gamma = 0.2;
        c.tau = 1.0;
    });
    eprintln!("VS loss: balanced / tail accuracy {vs_bal:.3} / {vs_tail:.3}");
    assert!(vs_bal > base_bal, "VS balanced accuracy {vs_bal} vs baseline {base_bal}");
    assert!(vs_tail > base_tail + 0.2, "VS tail accuracy {vs_tail} vs baseline {base_tail}");
}

/// The CIFAR ResNet-32 of the literature (LDAM-DRW's, option-A shortcuts) learns on the CPU
/// too, and resampling lifts its tail: a smaller set (300 images per class, IF 10) and 4
/// epochs keep it to about a minute. Measured: baseline 0.51 balanced with the 4 rarest
/// classes at 0, class-balanced resampling 0.90.
#[test]
fn resnet32_learns_and_resampling_lifts_its_tail() {
    const RESNET_EPOCHS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset_of(&data, 300, 50, 10.0, RESNET_EPOCHS);
    let resnet32 = |c: &mut TrainConfig| {
        c.arch = Some("resnet32".into());
        c.epochs = RESNET_EPOCHS;
    };
    let (base_bal, base_tail) = train_with(&data, &dir.path().join("base"), None, resnet32);
    let (rs_bal, rs_tail) = train_with(&data, &dir.path().join("resample"), Some("class-balanced"), resnet32);
    eprintln!(
        "resnet32 balanced / tail accuracy: baseline {base_bal:.3} / {base_tail:.3}, resample {rs_bal:.3} / {rs_tail:.3}"
    );
    assert!(base_bal > 0.3, "resnet32 baseline balanced accuracy {base_bal} (chance is 0.1)");
    assert!(rs_bal > base_bal, "resnet32 resample balanced accuracy {rs_bal} vs baseline {base_bal}");
    assert!(rs_tail > base_tail + 0.2, "resnet32 resample tail accuracy {rs_tail} vs baseline {base_tail}");
}
