//! Dataset directories made by code (docs/FORMATS.md layout), written with arrow-rs so the
//! reader is tested against the contract, not against lt-data's writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray, UInt16Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A learnable toy set: class c is a bright 8x8 square at one of 10 places, plus noise.
pub fn image(class: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (cy, cx) = (4 + (class / 4) * 8, 4 + (class % 4) * 7);
    let mut img = vec![0u8; 3 * 32 * 32];
    for ch in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let inside = y >= cy && y < cy + 8 && x >= cx && x < cx + 8;
                let base: i32 = if inside { 200 } else { 40 };
                let noise: i32 = rng.random_range(-30..=30);
                img[ch * 1024 + y * 32 + x] = (base + noise + 10 * ch as i32).clamp(0, 255) as u8;
            }
        }
    }
    img
}

/// Writes a dataset with `train_counts[c]` training and `test_per_class` test images per class;
/// the subset is the whole train split. Returns the train labels in index order.
pub fn write_dataset(dir: &Path, train_counts: &[usize], test_per_class: usize, seed: u64) -> Vec<u16> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut split, mut index, mut label, mut images) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut train_labels = Vec::new();
    for (name, counts) in [("train", train_counts.to_vec()), ("test", vec![test_per_class; train_counts.len()])] {
        // Interleave classes so index order is not sorted by class.
        let mut labels: Vec<u16> = Vec::new();
        let max = counts.iter().copied().max().unwrap_or(0);
        for k in 0..max {
            for (c, &n) in counts.iter().enumerate() {
                if k < n {
                    labels.push(c as u16);
                }
            }
        }
        for (i, &l) in labels.iter().enumerate() {
            split.push(name);
            index.push(i as u32);
            label.push(l);
            images.push(image(l as usize, &mut rng));
        }
        if name == "train" {
            train_labels = labels;
        }
    }
    let split = (Field::new("split", DataType::Utf8, false), Arc::new(StringArray::from(split)) as ArrayRef);
    let image =
        (Field::new("image", DataType::Binary, false), Arc::new(BinaryArray::from_iter_values(images.iter())) as _);
    write(&dir.join("samples.parquet"), vec![split, u32s("index", index), u16s("label", label), image]);
    let n = train_labels.len() as u32;
    write(&dir.join("subset.parquet"), vec![u32s("index", (0..n).collect()), u16s("label", train_labels.clone())]);
    // An "instance" manifest of two epochs: reversed, then as is.
    let (mut ep, mut pos, mut idx) = (Vec::new(), Vec::new(), Vec::new());
    for e in 0..2u32 {
        for p in 0..n {
            ep.push(e);
            pos.push(p);
            idx.push(if e == 0 { n - 1 - p } else { p });
        }
    }
    write(&dir.join("manifest-instance.parquet"), vec![u32s("epoch", ep), u32s("position", pos), u32s("index", idx)]);
    let names: Vec<String> = (0..train_counts.len()).map(|c| format!("class{c}")).collect();
    let json = serde_json::json!({
        "source": "fixture", "seed": seed, "class_names": names, "image_shape": [3, 32, 32],
        "source_counts": train_counts, "subset_counts": train_counts,
        "test_counts": vec![test_per_class; train_counts.len()],
        "manifests": { "instance": { "file": "manifest-instance.parquet", "epochs": 2, "epoch_len": [n, n] } },
    });
    std::fs::write(dir.join("dataset.json"), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    rehash(dir);
    train_labels
}

/// Command-line words written as one string: `flags("--epochs 1 --quiet")`.
pub fn flags(words: &str) -> Vec<&str> {
    words.split_whitespace().collect()
}

/// A fresh temporary directory holding a [`write_dataset`] dataset in `data/`.
pub fn temp_dataset(train_counts: &[usize], test_per_class: usize, seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_dataset(&data, train_counts, test_per_class, seed);
    (dir, data)
}

/// Records the sha256 of every Parquet file of `dir` in its dataset.json's `files`, as
/// `lt-data build` does: after a test edits a file on purpose, so only the check under test
/// sees the edit.
pub fn rehash(dir: &Path) {
    use sha2::Digest;
    let mut files = serde_json::Map::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    for name in names {
        let hash = hex::encode(sha2::Sha256::digest(std::fs::read(dir.join(&name)).unwrap()));
        files.insert(name, hash.into());
    }
    edit_dataset_json(dir, |json| json["files"] = files.into());
}

/// A JSON file (run.json, dataset.json) as a value.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Rewrites `dir/dataset.json` after `f` edited it.
pub fn edit_dataset_json(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("dataset.json");
    let mut json = read_json(&path);
    f(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

/// A non-null u32 column.
fn u32s(name: &str, values: Vec<u32>) -> (Field, ArrayRef) {
    (Field::new(name, DataType::UInt32, false), Arc::new(UInt32Array::from(values)))
}

/// A non-null u16 column.
fn u16s(name: &str, values: Vec<u16>) -> (Field, ArrayRef) {
    (Field::new(name, DataType::UInt16, false), Arc::new(UInt16Array::from(values)))
}

/// Writes one row group of `columns` as a Parquet file.
fn write(path: &Path, columns: Vec<(Field, ArrayRef)>) {
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The `lt-train` binary run with `args`, without backtraces in its messages.
pub fn lt_train(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lt-train")).args(args).env("RUST_BACKTRACE", "0").output().unwrap()
}

/// A child's stderr as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `lt-train` on `data` with densenet-tiny, two threads and no progress bars: `epochs` epochs of
/// `batch` images into `out`, plus the `extra` flags.
pub fn train_tiny(data: &Path, out: &Path, batch: usize, epochs: usize, extra: &[&str]) -> std::process::Output {
    let (batch, epochs) = (batch.to_string(), epochs.to_string());
    let mut args = vec!["--data", p(data), "--arch", "densenet-tiny", "--batch-size", &batch, "--threads", "2"];
    args.extend(["--quiet", "--epochs", &epochs, "--out", p(out)]);
    args.extend(extra);
    lt_train(&args)
}

/// A synthetic dataset (40 images per class, 3 test images per class), exp profile IF 5, seed
/// 5, built by lt-data: `val_per_class` held out, manifests of `strategies` for 3 epochs.
pub fn built(out: &Path, val_per_class: u64, strategies: Vec<lt_data::Strategy>) -> lt_data::DatasetMeta {
    use lt_data::build::{BuildConfig, ProfileSpec, build};
    use lt_data::{NoProgress, Profile, SourceOptions, SourceSpec};
    let cfg = BuildConfig {
        source_text: "synthetic:40".into(),
        source: SourceSpec::Synthetic(40),
        source_options: SourceOptions { test_per_class: 3, ..SourceOptions::default() },
        profile: ProfileSpec::Ready(Profile::Exp { imbalance: 5.0, n_max: None, shuffle_classes: false }),
        seed: 5,
        val_per_class,
        strategies,
        epochs: 3,
        out: out.to_path_buf(),
        force: false,
    };
    build(&cfg, &NoProgress).unwrap()
}
