//! Mutation fuzzing of what lt-report reads: a run directory (run.json, metrics.parquet,
//! predictions.parquet through `read_run`) and a dataset directory (dataset.json,
//! subset.parquet, a manifest through `read_dataset`), each made by the synthetic writers and
//! then edited byte by byte (Parquet footers get half of the edits) or value by value (JSON).
//!
//! Seeded and deterministic. Every input must give Ok or an Err naming a file of the input,
//! never a panic, and never ask for more than `lt_fuzz::ALLOC_LIMIT` bytes in one allocation
//! or `lt_fuzz::CASE_LIMIT` in all: lt-fuzz's counting global allocator (installed below)
//! enforces both on the fuzzing thread. `LT_FUZZ_ITERS=N` runs N cases per file instead of the default.

use std::path::Path;

use lt_fuzz::{FooterEdit, case, iterations, mutate_bytes, mutate_json, with_footer};
use lt_report::input::{read_dataset, read_run};
use lt_report::synthetic::{SyntheticRun, class_names, write_dataset, write_run};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static ALLOCATOR: lt_fuzz::Counting = lt_fuzz::Counting;

/// A mutated version of `good` (a file named `name`).
fn mutated(name: &str, good: &[u8], i: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    if name.ends_with(".json") && i % 2 == 1 {
        let mut v: serde_json::Value = serde_json::from_slice(good).unwrap();
        for _ in 0..=rng.random_range(0..3) {
            mutate_json(&mut v, rng);
        }
        return serde_json::to_vec(&v).unwrap();
    }
    if name.ends_with(".parquet") && i % 2 == 1 {
        // The footer holds the metadata.
        let footer = good.len().saturating_sub(1024);
        let mut b = good[..footer].to_vec();
        b.extend(mutate_bytes(&good[footer..], rng));
        return b;
    }
    mutate_bytes(good, rng)
}

fn names_the_dir(what: &str, dir: &Path, msg: &str) {
    assert!(
        msg.contains(&dir.display().to_string()) && (msg.contains(".json") || msg.contains(".parquet")),
        "{what}: the error does not name the file: {msg}"
    );
}

fn fuzz_files(dir: &Path, files: &[&str], seed: u64, default_iters: usize, read: &dyn Fn(&Path) -> Option<String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in files {
        let path = dir.join(name);
        let good = std::fs::read(&path).unwrap();
        assert!(read(dir).is_none(), "the unmutated fixture fails");
        for i in 0..iterations(default_iters) {
            std::fs::write(&path, mutated(name, &good, i, &mut rng)).unwrap();
            let what = format!("{name} case {i}");
            if let Some(msg) = case(&what, || read(dir)) {
                names_the_dir(&what, dir, &msg);
            }
        }
        std::fs::write(&path, &good).unwrap();
    }
}

/// `run` written as `run/` in a fresh temporary directory.
fn temp_run(run: SyntheticRun) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &run).unwrap();
    (tmp, dir)
}

#[test]
fn mutated_run_directories_are_refused_or_read_never_a_panic() {
    let (_tmp, dir) =
        temp_run(SyntheticRun { epochs: 3, test_per_class: 8, ..SyntheticRun::long_tailed(class_names(5), 3) });
    let read = |d: &Path| read_run(d).err().map(|e| e.to_string());
    fuzz_files(&dir, &["run.json", "metrics.parquet", "predictions.parquet"], 0x004e_9047, 200, &read);
}

#[test]
fn mutated_dataset_directories_are_refused_or_read_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let names = class_names(4);
    write_dataset(&dir, &names, &[20, 20, 20, 20], &[20, 10, 5, 2], &[("none", 2), ("oversample", 2)]).unwrap();
    let read = |d: &Path| read_dataset(d).err().map(|e| e.to_string());
    fuzz_files(&dir, &["dataset.json", "subset.parquet", "manifest-oversample.parquet"], 0x0da7_a5e7, 200, &read);
}

#[test]
fn the_allocation_limit_is_enforced() {
    let refused = case("a 1 GiB request", || Vec::<u8>::new().try_reserve_exact(1 << 30).is_err());
    assert!(refused, "a request above ALLOC_LIMIT was granted");
    assert!(case("a 1 MiB request", || Vec::<u8>::new().try_reserve_exact(1 << 20).is_ok()));
}

#[test]
fn lying_parquet_footers_are_errors_naming_the_file() {
    let (_tmp, dir) = temp_run(SyntheticRun { epochs: 2, ..SyntheticRun::long_tailed(class_names(3), 1) });
    let edits: [(&str, FooterEdit); 3] = [
        ("a negative chunk size", |g, c| (g, c.set_total_compressed_size(-8))),
        ("a negative page offset", |g, c| (g, c.set_data_page_offset(-5).set_dictionary_page_offset(None))),
        ("a 1 TiB column chunk", |g, c| (g, c.set_total_compressed_size(1 << 40))),
    ];
    for name in ["metrics.parquet", "predictions.parquet"] {
        let good = std::fs::read(dir.join(name)).unwrap();
        for (what, edit) in edits {
            std::fs::write(dir.join(name), with_footer(&good, edit)).unwrap();
            let what = format!("{name} with {what}");
            let msg = case(&what, || read_run(&dir)).expect_err(&what).to_string();
            names_the_dir(&what, &dir, &msg);
            assert!(msg.contains(name), "{what}: {msg}");
        }
        std::fs::write(dir.join(name), &good).unwrap();
    }
}

#[test]
fn hostile_dataset_indices_and_paths_are_errors_naming_the_file() {
    use std::sync::Arc;

    use arrow::array::{RecordBatch, UInt16Array, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    write_dataset(&dir, &class_names(2), &[4, 4], &[4, 2], &[("none", 1)]).unwrap();
    // A subset index of 2^32 - 1: an error, not an 8 GiB table of labels.
    let schema = Arc::new(Schema::new(vec![
        Field::new("index", DataType::UInt32, false),
        Field::new("label", DataType::UInt16, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt32Array::from(vec![0, u32::MAX])), Arc::new(UInt16Array::from(vec![0, 1]))],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(dir.join("subset.parquet")).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let msg = case("subset index 2^32 - 1", || read_dataset(&dir)).expect_err("index 2^32 - 1").to_string();
    assert!(msg.contains("manifest-none.parquet") || msg.contains("subset.parquet"), "{msg}");
    // A manifest listed outside the directory is refused, never read.
    let json_path = dir.join("dataset.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    json["manifests"]["none"]["file"] = "../../run/metrics.parquet".into();
    std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let msg = read_dataset(&dir).expect_err("a manifest outside the directory").to_string();
    assert!(msg.contains("dataset.json") && msg.contains("../../run/metrics.parquet"), "{msg}");
}
