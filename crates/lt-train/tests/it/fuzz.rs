//! Mutation fuzzing of what lt-train reads from disk: dataset.json, subset.parquet and
//! samples.parquet of a valid fixture (Dataset::open, with and without sha256 verification,
//! then the manifest and the training checks), and checkpoints (Checkpoint::load).
//!
//! Seeded and deterministic (a failure names its case; rerun reproduces it). Every input must
//! give Ok or an Err naming a file of the input, never a panic, and never ask for more than
//! `lt_fuzz::ALLOC_LIMIT` bytes in one allocation or `lt_fuzz::CASE_LIMIT` bytes in all: the
//! counting global allocator of lt-fuzz (installed below) enforces both on the fuzzing
//! thread. `LT_FUZZ_ITERS=N` runs N cases per target instead of the default.

use std::path::Path;

use lt_fuzz::{FooterEdit, case, iterations, mutate_bytes, mutate_json, with_footer};
use lt_train::checkpoint::Checkpoint;
use lt_train::config::TrainConfig;
use lt_train::dataset::Dataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::Digest;

use super::fixture::{edit_dataset_json, write_dataset};

#[global_allocator]
static ALLOCATOR: lt_fuzz::Counting = lt_fuzz::Counting;

/// Opens a (mutated) dataset directory every way training does; Ok or an Err naming a file.
fn exercise_dataset(dir: &Path, what: &str) {
    for verify in [true, false] {
        let opened = case(what, || Dataset::open_checked(dir, verify));
        match opened {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&dir.display().to_string()) && (msg.contains(".json") || msg.contains(".parquet")),
                    "{what} (verify {verify}): the error does not name the file: {msg}"
                );
            }
            Ok(data) => {
                let cfg = TrainConfig {
                    arch: Some("densenet-tiny".into()),
                    data: dir.to_path_buf(),
                    out: dir.join("run"),
                    resample: Some("instance".into()),
                    batch_size: 4,
                    ..TrainConfig::default()
                };
                let _ = case(what, || data.check_training(&cfg));
                if let Err(e) = case(what, || data.manifest("instance")) {
                    let msg = e.to_string();
                    assert!(msg.contains(&dir.display().to_string()), "{what}: manifest error names no file: {msg}");
                }
            }
        }
    }
}

fn fixture(dir: &Path) {
    write_dataset(dir, &[6, 4, 3, 2], 2, 17);
}

#[test]
fn mutated_dataset_json_is_refused_or_read_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir);
    let path = dir.join("dataset.json");
    let good = std::fs::read(&path).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x1d5e7);
    for i in 0..iterations(400) {
        let bytes = if i % 2 == 0 {
            mutate_bytes(&good, &mut rng)
        } else {
            let mut v = value.clone();
            for _ in 0..rng.random_range(1..=3) {
                mutate_json(&mut v, &mut rng);
            }
            serde_json::to_vec(&v).unwrap()
        };
        std::fs::write(&path, &bytes).unwrap();
        exercise_dataset(&dir, &format!("dataset.json case {i}"));
    }
}

/// Writes `bytes` as `dir/name` and records its sha256 in dataset.json, so the Parquet reader
/// (not the hash check) meets the mutation when verifying too.
fn replace_hashed(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    edit_dataset_json(dir, |json| json["files"][name] = hex::encode(sha2::Sha256::digest(bytes)).into());
}

fn fuzz_parquet(name: &str, seed: u64, default_iters: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir);
    let good = std::fs::read(dir.join(name)).unwrap();
    let good_json = std::fs::read(dir.join("dataset.json")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Parquet keeps its metadata in the footer: aim half of the edits there.
    let footer = good.len().saturating_sub(good.len().min(2048));
    for i in 0..iterations(default_iters) {
        let bytes = if i % 2 == 0 {
            mutate_bytes(&good, &mut rng)
        } else {
            let mut tail = mutate_bytes(&good[footer..], &mut rng);
            let mut b = good[..footer].to_vec();
            b.append(&mut tail);
            b
        };
        std::fs::write(dir.join("dataset.json"), &good_json).unwrap();
        replace_hashed(&dir, name, &bytes);
        exercise_dataset(&dir, &format!("{name} case {i}"));
    }
}

#[test]
fn mutated_subset_parquet_is_refused_or_read_never_a_panic() {
    fuzz_parquet("subset.parquet", 0x5b5e7, 300);
}

#[test]
fn mutated_samples_parquet_is_refused_or_read_never_a_panic() {
    fuzz_parquet("samples.parquet", 0x5a3b1e5, 200);
}

#[test]
fn mutated_manifest_parquet_is_refused_or_read_never_a_panic() {
    fuzz_parquet("manifest-instance.parquet", 0x3a71f357, 200);
}

#[test]
fn mutated_checkpoints_are_refused_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("last.ckpt");
    let config = TrainConfig { arch: Some("densenet-tiny".into()), ..TrainConfig::default() };
    type Meta = (TrainConfig, Vec<f64>, Option<(f64, usize)>);
    let meta: Meta = (config, vec![0.5, 0.25, f64::MIN_POSITIVE], Some((0.5, 2)));
    let ck = Checkpoint { epoch: 2, meta, tensors: vec![("w".into(), vec![0.5; 40]), ("b".into(), vec![-1.0; 3])] };
    ck.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let back: Checkpoint<Meta> = Checkpoint::load(&path).unwrap();
    assert_eq!((back.epoch, back.tensors.len()), (2, 2));
    // A checkpoint that ends in the sha256 of the rest is re-sealed after mutation, so the
    // parser behind the checksum is fuzzed too (whatever the format, nothing else is assumed).
    let sealed = good.len() > 32 && sha2::Sha256::digest(&good[..good.len() - 32])[..] == good[good.len() - 32..];
    let mut rng = ChaCha8Rng::seed_from_u64(0xc4ec4);
    for i in 0..iterations(400) {
        let mut bytes = mutate_bytes(&good, &mut rng);
        if sealed && i % 2 == 1 {
            let mut content = mutate_bytes(&good[..good.len() - 32], &mut rng);
            content.extend_from_slice(&sha2::Sha256::digest(&content));
            bytes = content;
        }
        std::fs::write(&path, &bytes).unwrap();
        let what = format!("checkpoint case {i}");
        if let Err(e) = case(&what, || Checkpoint::<Meta>::load(&path)) {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{what}: the error does not name the file: {msg}");
        }
    }
}

#[test]
fn the_allocation_limit_is_enforced() {
    // The guard itself must work, or the fuzzing above proves nothing about memory.
    let refused = case("a 1 GiB request", || Vec::<u8>::new().try_reserve_exact(1 << 30).is_err());
    assert!(refused, "a request above ALLOC_LIMIT was granted");
    let granted = case("a 1 MiB request", || Vec::<u8>::new().try_reserve_exact(1 << 20).is_ok());
    assert!(granted);
}

#[test]
fn lying_parquet_footers_are_refused_before_the_reader_allocates() {
    let cases: [(&str, FooterEdit, &str); 5] = [
        ("a 1 TiB column chunk", |g, c| (g, c.set_total_compressed_size(1 << 40)), "claims bytes"),
        ("a negative chunk size", |g, c| (g, c.set_total_compressed_size(-8)), "claims bytes"),
        (
            "a negative page offset",
            |g, c| (g, c.set_data_page_offset(-5).set_dictionary_page_offset(None)),
            "claims bytes",
        ),
        ("a negative row count", |g, c| (g.set_num_rows(-1), c), "negative row count"),
        ("2^63 - 1 rows", |g, c| (g.set_num_rows(i64::MAX), c), "rows, dataset.json's counts say"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir);
    for name in ["subset.parquet", "samples.parquet", "manifest-instance.parquet"] {
        let good = std::fs::read(dir.join(name)).unwrap();
        for (what, edit, needle) in cases {
            replace_hashed(&dir, name, &with_footer(&good, edit));
            let what = format!("{name} with {what}");
            let result = case(&what, || {
                let data = Dataset::open_checked(&dir, true)?;
                data.manifest("instance").map(|_| ())
            });
            let msg = result.expect_err(&what).to_string();
            assert!(msg.contains(name) && msg.contains(needle), "{what}: {msg}");
        }
        replace_hashed(&dir, name, &good);
    }
}
