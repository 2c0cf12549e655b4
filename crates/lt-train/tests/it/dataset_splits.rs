//! What lt-train takes from a dataset beyond the subset: the validation split `lt-data build
//! --val-per-class` held out (read, verified, preferred over `--val-fraction`), and a
//! resampling manifest the directory lacks (computed in memory, equal to lt-data's file).

use std::path::Path;

use lt_data::Strategy;
use lt_train::config::TrainConfig;
use lt_train::dataset::{Dataset, DatasetError, ValidationSource};
use lt_train::train::carve_validation;

use super::fixture::{built, edit_dataset_json, read_json, rehash, stderr, temp_dataset, train_tiny};

fn config(data: &Path) -> TrainConfig {
    TrainConfig { data: data.to_path_buf(), out: data.join("unused-run"), ..TrainConfig::default() }
}

#[test]
fn the_validation_split_is_read_checked_and_preferred() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let meta = built(&data, 4, vec![Strategy::Instance]);
    let dataset = Dataset::open_checked(&data, true).unwrap();
    // What lt-data wrote, read back.
    let vp = data.join("validation.parquet");
    let frame = lt_data::parquet::read_frame(&vp, None).unwrap();
    assert_eq!(dataset.validation, lt_data::parquet::u32_column(&frame, &vp, "index").unwrap());
    assert_eq!(dataset.info.validation_counts, vec![4; 10]);
    assert_eq!(dataset.info.validation.as_ref().unwrap().per_class, 4);
    assert!(dataset.validation.iter().all(|i| dataset.subset.binary_search(i).is_err()));
    assert_eq!(dataset.subset.len() as u64, meta.subset_counts.iter().sum::<u64>());

    // The dataset's split wins over --val-fraction: the whole subset trains.
    let mut cfg = config(&data);
    cfg.val_fraction = 0.2;
    let split = dataset.training_split(&cfg);
    assert_eq!(split.source, ValidationSource::Dataset { per_class: 4 });
    assert_eq!((&split.train, &split.validation), (&dataset.subset, &dataset.validation));

    // Without the split, --val-fraction is the fallback, and 0 means no validation.
    let plain = tmp.path().join("plain");
    built(&plain, 0, vec![Strategy::Instance]);
    let dataset = Dataset::open_checked(&plain, true).unwrap();
    assert!(dataset.validation.is_empty());
    let split = dataset.training_split(&cfg);
    assert_eq!(split.source, ValidationSource::Carved { fraction: 0.2 });
    let (train, val) = carve_validation(&dataset.subset, &dataset.train.labels, 10, 0.2, cfg.seed);
    assert_eq!((split.train, split.validation), (train, val));
    cfg.val_fraction = 0.0;
    let split = dataset.training_split(&cfg);
    assert_eq!((split.source, split.train, split.validation.len()), (ValidationSource::None, dataset.subset, 0));
}

#[test]
fn the_validation_file_is_covered_by_the_hashes_and_the_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    built(&data, 3, vec![Strategy::Instance]);
    let vp = data.join("validation.parquet");
    let original = std::fs::read(&vp).unwrap();
    let open_err = |verify: bool| Dataset::open_checked(&data, verify).unwrap_err();

    // A changed byte: the sha256 check names the file.
    let mut changed = original.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x40;
    std::fs::write(&vp, &changed).unwrap();
    let e = open_err(true);
    assert!(matches!(e, DatasetError::Checksum { .. }) && e.to_string().contains("validation.parquet"), "{e}");
    std::fs::write(&vp, &original).unwrap();

    // Not in `files`: unverifiable.
    edit_dataset_json(&data, |j| {
        j["files"].as_object_mut().unwrap().remove("validation.parquet");
    });
    let e = open_err(true);
    assert!(matches!(e, DatasetError::Unverifiable { .. }) && e.to_string().contains("validation.parquet"), "{e}");

    // Counts that disagree with the file, or with the source, are refused with or without
    // verification.
    rehash(&data);
    edit_dataset_json(&data, |j| j["validation_counts"][2] = 4.into());
    let e = open_err(false).to_string();
    assert!(e.contains("validation.parquet") && e.contains("30 rows") && e.contains("31"), "{e}");
    edit_dataset_json(&data, |j| j["validation_counts"][3] = 2.into());
    let e = open_err(false).to_string();
    assert!(e.contains("validation.parquet") && e.contains("class 2") && e.contains("validation_counts says 4"), "{e}");
    edit_dataset_json(&data, |j| j["validation_counts"][3] = 3.into());
    edit_dataset_json(&data, |j| j["validation_counts"][2] = 40.into());
    let e = open_err(false).to_string();
    assert!(e.contains("class 2") && e.contains("more than source_counts"), "{e}");
    edit_dataset_json(&data, |j| {
        j["validation_counts"][2] = 3.into();
        j["validation"]["file"] = "../elsewhere.parquet".into();
    });
    let e = open_err(false).to_string();
    assert!(e.contains("validation.file"), "{e}");
    edit_dataset_json(&data, |j| j["validation"]["file"] = "validation.parquet".into());
    Dataset::open_checked(&data, false).unwrap();
}

#[test]
fn a_missing_manifest_is_computed_as_lt_data_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let beta = 0.99;
    let strategies = vec![
        Strategy::Instance,
        Strategy::ClassBalanced,
        Strategy::RandomOver,
        Strategy::RandomUnder,
        Strategy::Sqrt,
        Strategy::Progressive,
        Strategy::EffectiveNumber { beta },
    ];
    let full = tmp.path().join("full");
    built(&full, 2, strategies.clone());
    let bare = tmp.path().join("bare");
    built(&bare, 2, vec![Strategy::Instance]);
    let with_files = Dataset::open_checked(&full, true).unwrap();
    for s in &strategies {
        let name = s.name();
        let written = with_files.manifest(name).unwrap();
        let mut cfg = config(&bare);
        cfg.epochs = 3;
        cfg.beta = beta;
        cfg.resample = Some(name.to_string());
        let dataset = Dataset::open_for_training(&cfg).unwrap();
        assert_eq!(dataset.manifest(name).unwrap(), written, "{name}");
        // A manifest the directory has is read, not computed.
        let mut again = Dataset::open_checked(&full, true).unwrap();
        assert!(!again.compute_missing_manifest(name, 3, beta).unwrap());
    }
    // Without the computation, a bare directory still has no manifest of that name.
    let e = Dataset::open(&bare).unwrap().manifest("sqrt").unwrap_err();
    assert!(matches!(e, DatasetError::NoManifest { .. }), "{e}");
    // A directory that records no seed cannot reproduce lt-data's manifest.
    edit_dataset_json(&bare, |j| {
        j.as_object_mut().unwrap().remove("seed");
    });
    rehash(&bare);
    let mut dataset = Dataset::open(&bare).unwrap();
    let e = dataset.compute_missing_manifest("sqrt", 3, beta).unwrap_err().to_string();
    assert!(e.contains("no `seed`") && e.contains("lt-data build --resample sqrt"), "{e}");
}

#[test]
fn lt_train_resamples_without_a_rebuild_and_says_so() {
    let (tmp, data) = temp_dataset(&[24, 16, 8, 4], 4, 7);
    let out = tmp.path().join("run");
    let o = train_tiny(&data, &out, 16, 1, &["--resample", "class-balanced"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("no manifest `class-balanced`; computing it in memory"), "{e}");
    assert!(out.join("run.json").is_file());
}

#[test]
fn a_run_validates_on_the_dataset_split_and_says_val_fraction_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let meta = built(&data, 3, vec![Strategy::Instance]);
    let out = tmp.path().join("run");
    let o = train_tiny(&data, &out, 16, 2, &["--val-fraction", "0.2"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("has a validation split (3 images per class") && e.contains("not on --val-fraction 0.2"), "{e}");
    let run = read_json(&out.join("run.json"));
    // The whole subset trained; validation was the held-out split, and it chose the epoch.
    assert_eq!(run["train_counts"], serde_json::json!(meta.subset_counts));
    assert_eq!(run["val_counts"], serde_json::json!(vec![3; 10]));
    assert_eq!(run["selection"]["validation"], "dataset");
}
