//! The balanced validation split (`--val-per-class N`): held out per class before the long-tail
//! cut, disjoint from the subset, seeded, written as validation.parquet and recorded in
//! dataset.json; too few images of a class is an error naming it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use lt_data::build::{BuildConfig, ProfileSpec, build};
use lt_data::parquet::{read_frame, u16_column, u32_column};
use lt_data::profile::{Profile, select_subset, select_subset_after};
use lt_data::validation::{FILE, RULE, hold_out};
use lt_data::{DatasetMeta, NoProgress, SourceOptions, SourceSpec, Strategy};

use crate::helpers::{balanced_labels, count, dir_bytes, names};

const PER_CLASS: u64 = 60;

fn config(out: &Path, profile: Profile, val_per_class: u64, seed: u64) -> BuildConfig {
    BuildConfig {
        source_text: format!("synthetic:{PER_CLASS}"),
        source: SourceSpec::Synthetic(PER_CLASS),
        source_options: SourceOptions { test_per_class: 4, ..SourceOptions::default() },
        profile: ProfileSpec::Ready(profile),
        seed,
        val_per_class,
        strategies: vec![Strategy::Instance, Strategy::ClassBalanced],
        epochs: 2,
        out: out.to_path_buf(),
        force: false,
    }
}

fn exp10() -> Profile {
    Profile::Exp { imbalance: 10.0, n_max: None, shuffle_classes: false }
}

/// (index, label) rows of an index table (subset.parquet, validation.parquet).
fn index_table(path: &Path) -> (Vec<u32>, Vec<u16>) {
    let df = read_frame(path, None).unwrap();
    (u32_column(&df, path, "index").unwrap(), u16_column(&df, path, "label").unwrap())
}

#[test]
fn a_build_holds_out_a_balanced_split_before_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let meta = build(&config(&out, exp10(), 8, 3), &NoProgress).unwrap();
    let train_labels = lt_data::source::synthetic::generate(PER_CLASS, 4, 0).train.labels;

    let v = meta.validation.clone().expect("a validation split");
    assert_eq!((v.file.as_str(), v.per_class, v.rule.as_str()), (FILE, 8, RULE));
    assert_eq!(meta.validation_counts, vec![8; 10]);
    assert_eq!(DatasetMeta::read(&out).unwrap(), meta);
    // The profile cut what validation left: n_max defaults to 60 - 8 = 52 images.
    assert_eq!(meta.profile["n_max"], 52);
    assert_eq!(meta.subset_counts, lt_data::profile::exp_counts(10, 52, 10.0).unwrap());

    let (val, val_labels) = index_table(&out.join(FILE));
    assert!(val.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    for (&i, &l) in val.iter().zip(&val_labels) {
        assert_eq!(train_labels[i as usize], l, "label of train image {i}");
    }
    assert_eq!(count(val_labels.iter().copied(), 10), vec![8; 10]);
    let (subset, _) = index_table(&out.join("subset.parquet"));
    let in_subset: HashSet<u32> = subset.iter().copied().collect();
    assert!(val.iter().all(|i| !in_subset.contains(i)), "validation and subset overlap");
    // The manifests visit the subset only.
    let mp = out.join("manifest-class-balanced.parquet");
    let visited = u32_column(&read_frame(&mp, None).unwrap(), &mp, "index").unwrap();
    assert!(visited.iter().all(|i| in_subset.contains(i)));
    // dataset.json's hashes cover the new file.
    assert_eq!(meta.files[FILE], lt_data::inspect::sha256_file(&out.join(FILE)).unwrap());

    // The same seed gives identical files; another seed another split.
    let again = tmp.path().join("again");
    build(&config(&again, exp10(), 8, 3), &NoProgress).unwrap();
    assert_eq!(dir_bytes(&out), dir_bytes(&again));
    let other = tmp.path().join("other");
    build(&config(&other, exp10(), 8, 4), &NoProgress).unwrap();
    assert_ne!(index_table(&other.join(FILE)).0, val);
}

#[test]
fn without_val_per_class_the_directory_is_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let meta = build(&config(&out, exp10(), 0, 3), &NoProgress).unwrap();
    assert!(meta.validation.is_none() && meta.validation_counts.is_empty());
    assert!(!out.join(FILE).exists());
    let json = std::fs::read_to_string(out.join("dataset.json")).unwrap();
    assert!(!json.contains("validation"), "{json}");
    // The subset is the one select_subset draws from the whole train split.
    let labels = lt_data::source::synthetic::generate(PER_CLASS, 4, 0).train.labels;
    let want = select_subset(&labels, &names(10), &exp10(), 3).unwrap();
    assert_eq!(index_table(&out.join("subset.parquet")).0, want);
    assert_eq!(select_subset_after(&labels, &names(10), &exp10(), 3, &[]).unwrap(), want);
}

#[test]
fn too_few_images_of_a_class_is_an_error_naming_it() {
    // Class 3 has 5 training images, the others 20.
    let mut labels = balanced_labels(20);
    let mut seen = 0;
    labels.retain(|&l| {
        seen += usize::from(l == 3);
        l != 3 || seen <= 5
    });
    assert_eq!(count(labels.iter().copied(), 10)[3], 5);
    let e = hold_out(&labels, &names(10), 5, 0, &[], 1).unwrap_err().to_string();
    for needle in ["class 3 (c3)", "--val-per-class 5", "has 5 images", "at most 4"] {
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
    let held = hold_out(&labels, &names(10), 4, 0, &[], 1).unwrap();
    assert_eq!(count(held.iter().map(|&i| labels[i as usize]), 10), vec![4; 10]);
    // A count the remaining images cannot give: the error says validation took them.
    let counts = Profile::Counts(vec![17, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    let e = select_subset_after(&labels, &names(10), &counts, 0, &held).unwrap_err().to_string();
    for needle in ["class 0 (c0)", "17 training images requested", "holds out 4 of its 20", "leaving 16"] {
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
    // Through a build, nothing is written.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let e = build(&config(&out, exp10(), PER_CLASS, 0), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("class 0") && e.contains("at most 59"), "{e}");
    assert!(!out.exists() && !lt_data::build::partial_dir(&out).exists());
}

#[test]
fn an_indices_list_is_kept_whole_and_validation_comes_from_the_rest() {
    let labels = balanced_labels(10);
    // The list takes 7 images of class 0 (indices 0, 10, ..., 60) and one of class 1.
    let list: Vec<u32> = (0..7).map(|k| k * 10).chain([1]).collect();
    let profile = Profile::Indices { origin: "list".into(), indices: list.clone() };
    let held = hold_out(&labels, &names(10), 3, 5, &list, 0).unwrap();
    assert!(held.iter().all(|i| !list.contains(i)));
    assert_eq!(count(held.iter().map(|&i| labels[i as usize]), 10), vec![3; 10]);
    let mut sorted = list.clone();
    sorted.sort_unstable();
    assert_eq!(select_subset_after(&labels, &names(10), &profile, 5, &held).unwrap(), sorted);
    // Class 0 has only 3 images outside the list.
    let e = hold_out(&labels, &names(10), 4, 5, &list, 0).unwrap_err().to_string();
    assert!(e.contains("class 0 (c0)") && e.contains("outside the indices list has 3"), "{e}");
    // A held-out image named by the list is refused.
    let e = select_subset_after(&labels, &names(10), &profile, 5, &[10]).unwrap_err().to_string();
    assert!(e.contains("index 10") && e.contains("disjoint"), "{e}");
}

fn lt_data_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lt-data")).args(args).output().unwrap()
}

#[test]
fn the_command_line_takes_val_per_class() {
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("ds");
    let base = ["build", "--quiet", "--source", "synthetic:30", "--test-per-class", "2", "--profile", "balanced"];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        a.extend(["--out", out.to_str().unwrap()]);
        lt_data_cli(&a)
    };
    let o = with(&["--val-per-class", "5"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("validation: 5 images per class"), "{stderr}");
    let meta = DatasetMeta::read(&out).unwrap();
    assert_eq!((meta.validation_counts.clone(), meta.subset_counts.clone()), (vec![5; 10], vec![25; 10]));
    // inspect counts the split from its file and verifies its hash with the others.
    let o = lt_data_cli(&["inspect", out.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{table}");
    assert!(table.contains("subset 250 + validation 50 (held out before the cut)"), "{table}");
    assert!(table.contains("files: 4 sha256 match"), "{table}");
    std::fs::remove_dir_all(&out).unwrap();
    let o = with(&["--val-per-class", "30"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("class 0") && stderr.contains("at most 29"), "{stderr}");
    assert!(!out.exists());
}
