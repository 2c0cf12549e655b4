//! Bad inputs are refused before training, with the file, row and value or the setting, its
//! value and its limit: changed dataset files (sha256), labels and indices out of range, a
//! dataset without a test split, run sizes and numeric settings that make no sense.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt16Array, UInt32Array};
use arrow::compute::concat_batches;
use lt_train::config::TrainConfig;
use lt_train::dataset::{Dataset, DatasetError};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::fixture::{edit_dataset_json, lt_train, p, read_json, rehash, stderr, write_dataset};

const COUNTS: [usize; 4] = [12, 8, 6, 4];

fn fixture(tmp: &Path, test_per_class: usize) -> PathBuf {
    let data = tmp.join("data");
    write_dataset(&data, &COUNTS, test_per_class, 3);
    data
}

/// Replaces the value at `row` of a u16 or u32 column of a Parquet file (the file rewritten
/// with the same schema).
fn edit(path: &Path, column: &str, row: usize, value: u32) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let batch = concat_batches(&batches[0].schema(), &batches).unwrap();
    let i = batch.schema().index_of(column).unwrap();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let col = &columns[i];
    columns[i] = if let Some(a) = col.as_any().downcast_ref::<UInt16Array>() {
        let mut v = a.values().to_vec();
        v[row] = u16::try_from(value).unwrap();
        Arc::new(UInt16Array::from(v))
    } else {
        let mut v = col.as_any().downcast_ref::<UInt32Array>().unwrap().values().to_vec();
        v[row] = value;
        Arc::new(UInt32Array::from(v))
    };
    let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn open_err(dir: &Path, verify: bool) -> String {
    match Dataset::open_checked(dir, verify) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected `{n}` in: {text}");
    }
}

/// A fast run's flags: densenet-tiny on the fixture (1 epoch unless `--epochs` is added).
fn run_args<'a>(data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "--data",
        p(data),
        "--out",
        p(out),
        "--arch",
        "densenet-tiny",
        "--batch-size",
        "8",
        "--threads",
        "2",
        "--quiet",
    ]
}

fn one_epoch<'a>(data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let mut args = run_args(data, out);
    args.extend(["--epochs", "1"]);
    args
}

#[test]
fn a_dataset_file_changed_after_the_build_is_refused_unless_no_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    assert!(Dataset::open_checked(&data, true).unwrap().verified);
    // Flip one byte inside the image data: still valid Parquet, only the hash can tell.
    let samples = data.join("samples.parquet");
    let mut bytes = std::fs::read(&samples).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&samples, &bytes).unwrap();
    assert!(Dataset::open_checked(&data, false).is_ok(), "the flip should leave valid Parquet");
    has(&open_err(&data, true), &["samples.parquet", "sha256", "lt-data build", "--no-verify"]);

    let out = tmp.path().join("run");
    let o = lt_train(&one_epoch(&data, &out));
    assert!(!o.status.success(), "trained on a changed file");
    has(&stderr(&o), &["samples.parquet", "sha256", "--no-verify"]);
    assert!(!out.join("run.json").exists());

    let out = tmp.path().join("run-unverified");
    let mut args = one_epoch(&data, &out);
    args.push("--no-verify");
    let o = lt_train(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = read_json(&out.join("run.json"));
    assert_eq!(run["config"]["no_verify"], true);

    // `lt-train eval` checks the hashes the same way.
    let model = out.join("model.onnx");
    let eval = ["eval", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap()];
    let o = lt_train(&eval);
    assert!(!o.status.success(), "evaluated on a changed file");
    has(&stderr(&o), &["samples.parquet", "sha256", "--no-verify"]);
    let o = lt_train(&[&eval[..], &["--no-verify"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_manifest_changed_after_the_build_is_refused_too() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    edit(&data.join("manifest-instance.parquet"), "index", 0, 1);
    has(&open_err(&data, true), &["manifest-instance.parquet", "sha256", "--no-verify"]);
}

#[test]
fn a_dataset_json_without_hashes_cannot_be_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    edit_dataset_json(&data, |json| {
        json["files"].as_object_mut().unwrap().remove("subset.parquet");
    });
    has(&open_err(&data, true), &["dataset.json", "subset.parquet", "--no-verify"]);
    assert!(Dataset::open_checked(&data, false).is_ok());
    // A listed name outside the directory is refused, never read.
    rehash(&data);
    edit_dataset_json(&data, |json| json["files"]["../outside"] = serde_json::Value::String("0".repeat(64)));
    has(&open_err(&data, true), &["dataset.json", "../outside"]);
}

/// How a corrupted table is noticed: by opening the dataset with the hashes updated (so
/// only the content checks can see the edit), without verifying them, or by reading a
/// manifest.
#[derive(Clone, Copy)]
enum Open {
    Rehashed,
    Unverified,
    Manifest,
}

impl Open {
    fn error(self, data: &Path) -> String {
        match self {
            Open::Rehashed => {
                rehash(data);
                open_err(data, true)
            }
            Open::Unverified => open_err(data, false),
            Open::Manifest => {
                rehash(data);
                Dataset::open_checked(data, true).unwrap().manifest("instance").unwrap_err().to_string()
            }
        }
    }
}

/// An edit of a file's u16 or u32 column at a row, how it is read, and what its error says.
type Edit<'a> = (&'a str, &'a str, usize, u32, Open, &'a [&'a str]);

#[test]
fn table_rows_are_checked_with_file_row_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    // Each edit (file, u16 or u32 column, row, new value) is made to a fresh copy of the file.
    // samples.parquet: rows 0..30 are train, 30..38 test; subset.parquet indexes 30 images.
    let edits: [Edit; 10] = [
        // A label of 50 with 4 classes.
        ("subset.parquet", "label", 3, 50, Open::Rehashed, &["row 3", "label 50", "4 classes"]),
        // A label in range that disagrees with samples.parquet.
        ("subset.parquet", "label", 5, 3, Open::Rehashed, &["row 5", "label 3"]),
        ("subset.parquet", "index", 7, 30, Open::Rehashed, &["row 7", "index 30", "30 images"]),
        // The same index twice (index 3 has row 7's label 3).
        ("subset.parquet", "index", 7, 3, Open::Rehashed, &["index 3", "twice"]),
        ("samples.parquet", "label", 33, 9, Open::Unverified, &["row 33", "test image 3", "label 9", "4 classes"]),
        ("samples.parquet", "index", 31, 8, Open::Unverified, &["row 31", "index 8", "test split (8 images"]),
        // A label in range but against dataset.json's counts.
        ("samples.parquet", "label", 0, 3, Open::Unverified, &["class 0", "source_counts"]),
        ("manifest-instance.parquet", "index", 40, 30, Open::Manifest, &["row 40", "index 30", "30 images"]),
        // An epoch far beyond the declared 2 epochs is an error, not a huge allocation.
        (
            "manifest-instance.parquet",
            "epoch",
            2,
            4_000_000_000,
            Open::Manifest,
            &["row 2", "epoch 4000000000", "2 epochs"],
        ),
        // A position twice in one epoch.
        ("manifest-instance.parquet", "position", 1, 0, Open::Manifest, &["epoch 0", "position"]),
    ];
    for (file, column, row, value, open, needles) in edits {
        let path = data.join(file);
        let original = std::fs::read(&path).unwrap();
        edit(&path, column, row, value);
        let e = open.error(&data);
        has(&e, &[file]);
        has(&e, needles);
        std::fs::write(&path, &original).unwrap();
        rehash(&data);
    }
    assert_eq!(Dataset::open(&data).unwrap().manifest("instance").unwrap().len(), 2);
}

#[test]
fn an_unknown_resampler_is_not_a_missing_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    let dataset = Dataset::open(&data).unwrap();
    for name in ["bogus", "../manifest-instance", ""] {
        let e = dataset.manifest(name).unwrap_err();
        assert!(matches!(e, DatasetError::UnknownResampler { .. }), "{name}: {e}");
        has(&e.to_string(), &["unknown resampler", "class-balanced", "random-over"]);
    }
    let e = dataset.manifest("sqrt").unwrap_err().to_string();
    has(&e, &["no manifest `sqrt`", "lt-data build --resample sqrt"]);

    let out = tmp.path().join("run");
    let mut args = one_epoch(&data, &out);
    args.extend(["--resample", "bogus"]);
    let o = lt_train(&args);
    assert!(!o.status.success());
    let e = stderr(&o);
    has(&e, &["resample", "bogus", "unknown resampler", "class-balanced"]);
    assert!(!e.contains("--resample bogus"), "suggests building an unknown resampler: {e}");
}

#[test]
fn a_dataset_without_a_test_split_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 0);
    let out = tmp.path().join("run");
    let o = lt_train(&one_epoch(&data, &out));
    assert!(!o.status.success(), "trained without a test split");
    has(&stderr(&o), &["samples.parquet", "no test split", "--test-per-class"]);
    assert!(!out.join("run.json").exists());
}

fn config(data: &Path) -> TrainConfig {
    TrainConfig {
        arch: Some("densenet-tiny".into()),
        data: data.to_path_buf(),
        out: data.join("run"),
        ..TrainConfig::default()
    }
}

#[test]
fn meaningless_numeric_settings_are_refused_naming_the_field() {
    let base = config(Path::new("/nonexistent/data"));
    base.validate().unwrap();
    type Edit = fn(&mut TrainConfig);
    let cases: &[(Edit, &str, &str)] = &[
        (|c| c.epochs = 4_294_967_295, "epochs", "100000"),
        (|c| c.batch_size = 10_000_000, "batch_size", "65536"),
        (|c| c.eval_batch_size = usize::MAX, "eval_batch_size", "65536"),
        (|c| c.focal_gamma = -1.0, "focal_gamma", ">= 0"),
        (|c| c.focal_gamma = f64::NAN, "focal_gamma", ">= 0"),
        (|c| c.focal_gamma = f64::INFINITY, "focal_gamma", ">= 0"),
        (|c| c.ldam_max_margin = -0.5, "ldam_max_margin", ">= 0"),
        (|c| c.ldam_scale = 0.0, "ldam_scale", "> 0"),
        (|c| c.ldam_scale = -30.0, "ldam_scale", "> 0"),
        (|c| c.tau = -1.0, "tau", ">= 0"),
        (|c| c.label_smoothing = -0.1, "label_smoothing", "[0, 1)"),
        (|c| c.weight_decay = -1e-4, "weight_decay", ">= 0"),
        (|c| c.weight_decay = f64::INFINITY, "weight_decay", "finite"),
        (|c| c.lr = -0.1, "lr", "positive"),
        (|c| c.momentum = -0.9, "momentum", "[0, 1)"),
        (|c| c.beta = -0.5, "beta", "[0, 1)"),
        (|c| c.val_fraction = -0.1, "val_fraction", "[0, 0.5)"),
        (|c| c.device = -1, "device", "0"),
        (|c| c.threads = Some(0), "threads", "1024"),
        (|c| c.threads = Some(1 << 20), "threads", "1024"),
        (|c| c.resample = Some("bogus".into()), "resample", "class-balanced"),
        (|c| c.resample = Some(String::new()), "resample", "unknown resampler"),
    ];
    for (edit, field, hint) in cases {
        let mut c = base.clone();
        edit(&mut c);
        let e = c.validate().expect_err(field);
        assert_eq!(e.field, *field, "{e}");
        has(&e.to_string(), &[field, hint]);
    }
}

#[test]
fn huge_epochs_and_negative_gamma_are_refused_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    let out = tmp.path().join("run");
    for (extra, needles) in [
        (&["--epochs", "4294967295"][..], &["epochs", "4294967295", "100000"][..]),
        (&["--loss", "focal", "--focal-gamma", "-1"], &["focal_gamma", "-1", ">= 0"]),
        (&["--eval-batch-size", "100000000"], &["eval_batch_size", "100000000", "65536"]),
    ] {
        let mut args = run_args(&data, &out);
        args.extend(extra);
        let o = lt_train(&args);
        assert!(!o.status.success(), "{extra:?} trained");
        has(&stderr(&o), needles);
        assert!(!out.exists(), "{extra:?} created the run directory");
    }
}

#[test]
fn the_size_of_a_run_is_checked_in_dataset_terms() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    // A manifest whose epochs are two million images long: 100,000 epochs of it are 2·10^11
    // image visits.
    edit_dataset_json(&data, |json| {
        json["manifests"]["instance"]["epoch_len"] = serde_json::json!([2_000_000, 2_000_000]);
    });
    let dataset = Dataset::open(&data).unwrap();
    let mut cfg = config(&data);
    cfg.epochs = 100_000;
    dataset.check_training(&cfg).unwrap();
    cfg.resample = Some("instance".into());
    let e = dataset.check_training(&cfg).unwrap_err().to_string();
    has(&e, &["epochs", "100000", "2000000", "100000000000"]);
    cfg.epochs = 10;
    dataset.check_training(&cfg).unwrap();
}

#[test]
fn configs_written_before_no_verify_still_parse() {
    let mut json = serde_json::to_value(config(Path::new("/d"))).unwrap();
    assert_eq!(json["no_verify"], false);
    json.as_object_mut().unwrap().remove("no_verify");
    let back: TrainConfig = serde_json::from_value(json).unwrap();
    assert!(!back.no_verify);
    let toml_back: TrainConfig = toml::from_str("arch = \"densenet-tiny\"\nepochs = 3\n").unwrap();
    assert!(!toml_back.no_verify);
}

#[test]
fn a_config_file_is_read_within_a_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture(tmp.path(), 2);
    let config = tmp.path().join("huge.toml");
    std::fs::write(&config, vec![b'#'; 2 << 20]).unwrap();
    let out = tmp.path().join("run");
    let o = lt_train(&["--config", p(&config), "--data", p(&data), "--out", p(&out)]);
    assert!(!o.status.success());
    has(&stderr(&o), &["huge.toml", "larger than 1048576 bytes"]);
}
