//! Fixtures made by code, and the Python cross-check helper.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The Python interpreter of the test venv (scripts/test.sh exports LT_TEST_PYTHON).
pub fn python() -> PathBuf {
    match std::env::var_os("LT_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "LT_TEST_PYTHON is not set: run scripts/test.sh, or export LT_TEST_PYTHON=$PWD/.venv-test/bin/python \
             after scripts/install-test-deps.sh"
        ),
    }
}

/// Run a Python snippet with arguments; panic with its output if it fails; return stdout.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(code).args(args).output().expect("start python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// (label, image bytes) records.
pub type Records = Vec<(u8, Vec<u8>)>;

/// Records (label, 3072 image bytes) made from a seed; labels cycle so every class appears.
pub fn records(n: usize, seed: u64, classes: usize) -> Records {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let label = ((i * 7 + (i / classes)) % classes) as u8;
            let mut img = vec![0u8; 3072];
            rng.fill(&mut img[..]);
            (label, img)
        })
        .collect()
}

/// Write records as a CIFAR-10 binary file.
pub fn write_cifar10_file(path: &Path, recs: &[(u8, Vec<u8>)]) {
    let mut bytes = Vec::with_capacity(recs.len() * 3073);
    for (l, img) in recs {
        bytes.push(*l);
        bytes.extend_from_slice(img);
    }
    std::fs::write(path, bytes).unwrap();
}

/// A CIFAR-10 binary directory: `per_file` records in each of the 5 train files, `test` in the
/// test file. Returns (train records, test records).
pub fn cifar10_dir(dir: &Path, per_file: usize, test: usize) -> (Records, Records) {
    std::fs::create_dir_all(dir).unwrap();
    let mut train = Vec::new();
    for i in 1..=5 {
        let recs = records(per_file, i as u64, 10);
        write_cifar10_file(&dir.join(format!("data_batch_{i}.bin")), &recs);
        train.extend(recs);
    }
    let test_recs = records(test, 99, 10);
    write_cifar10_file(&dir.join("test_batch.bin"), &test_recs);
    (train, test_recs)
}

/// Labels of a balanced 10-class split with `per_class` images each, interleaved.
pub fn balanced_labels(per_class: usize) -> Vec<u16> {
    (0..per_class * 10).map(|i| (i % 10) as u16).collect()
}

pub fn names(c: usize) -> Vec<String> {
    (0..c).map(|i| format!("c{i}")).collect()
}

pub fn count(labels: impl IntoIterator<Item = u16>, c: usize) -> Vec<u64> {
    let mut v = vec![0u64; c];
    for l in labels {
        v[l as usize] += 1;
    }
    v
}

/// Every file of `dir` with its bytes, sorted by name: two builds compare byte for byte.
pub fn dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}
