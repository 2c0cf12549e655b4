//! Mutation fuzzing of what lt-report reads: a run directory (run.json, metrics.parquet,
//! predictions.parquet through `read_run`) and a dataset directory (dataset.json,
//! subset.parquet, a manifest through `read_dataset`), each made by the synthetic writers and
//! then edited byte by byte (Parquet footers get half of the edits) or value by value (JSON).
//!
//! Seeded and deterministic. Every input must give Ok or an Err naming a file of the input,
//! never a panic, and never ask for more than [`ALLOC_LIMIT`] bytes in one allocation or
//! [`CASE_LIMIT`] in all: a counting global allocator (below) enforces both on the fuzzing
//! thread. `LT_FUZZ_ITERS=N` runs N cases per file instead of the default.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use lt_report::input::{read_dataset, read_run};
use lt_report::synthetic::{SplitMix, SyntheticRun, class_names, write_dataset, write_run};

/// The largest single allocation one input may cause.
const ALLOC_LIMIT: usize = 512 << 20;
/// The most bytes one input may allocate in all (the fixtures are a few KiB).
const CASE_LIMIT: usize = 1 << 30;

/// The system allocator, refusing (null: `try_reserve` fails, anything else aborts with the
/// size) a request above the fuzzing thread's limit, and counting what it gives.
struct Counting;

thread_local! {
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn admit(size: usize) -> bool {
    LIMIT
        .try_with(|limit| {
            if limit.get() == usize::MAX {
                return true;
            }
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            if size > limit.get() {
                return false;
            }
            let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
            true
        })
        .unwrap_or(true)
}

// SAFETY: every call is forwarded unchanged to `System`, or answered with null (allowed).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !admit(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn iterations(default: usize) -> usize {
    std::env::var("LT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs one case under the allocation limits; a failure names the case.
fn case<T>(what: &str, f: impl FnOnce() -> T) -> T {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    LIMIT.with(|l| l.set(ALLOC_LIMIT));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    LIMIT.with(|l| l.set(usize::MAX));
    let (largest, total) = (LARGEST.with(Cell::get), TOTAL.with(Cell::get));
    let value = result.unwrap_or_else(|_| panic!("{what}: panicked (see the message above)"));
    assert!(total <= CASE_LIMIT, "{what}: allocated {total} bytes in all (largest {largest}), limit {CASE_LIMIT}");
    value
}

const INTERESTING: [u64; 10] =
    [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 0x7fff_ffff_ffff_ffff, u64::MAX];

/// 1 to 4 byte-level edits: bit flips, interesting integers over 1/2/4/8 bytes, insertions,
/// deletions, a copied range, a cut.
fn mutate_bytes(input: &[u8], rng: &mut SplitMix) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..=rng.below(4) {
        if b.is_empty() {
            b.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(b.len());
        match rng.below(7) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next_u64() as u8,
            2 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 { v.to_le_bytes() } else { v.to_be_bytes() };
                for (k, &x) in bytes[..width].iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + k) {
                        *slot = x;
                    }
                }
            }
            3 => {
                let insert: Vec<u8> = (0..=rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                b.splice(at..at, insert);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            5 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let chunk = b[at..end].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, chunk);
            }
            _ => b.truncate(at),
        }
    }
    b
}

fn wild_json(rng: &mut SplitMix) -> serde_json::Value {
    use serde_json::json;
    match rng.below(13) {
        0 => json!(null),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(4_294_967_295u64),
        4 => json!(1e308),
        5 => json!(""),
        6 => json!([]),
        7 => json!({}),
        8 => json!(vec![u64::MAX; 3]),
        9 => json!(vec!["x"; 1000]),
        10 => json!(rng.below(100_000)),
        11 => json!("manifest-../../x.parquet"),
        _ => {
            let mut v = json!(0);
            for _ in 0..=rng.below(200) {
                v = json!([v]);
            }
            v
        }
    }
}

/// Replaces one random node of `value` by [`wild_json`], or removes a key on the way.
fn mutate_json(value: &mut serde_json::Value, rng: &mut SplitMix) {
    let stop = rng.below(4) == 0;
    match value {
        serde_json::Value::Object(map) if !map.is_empty() && !stop => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
            if rng.below(8) == 0 {
                map.remove(&key);
            } else if let Some(child) = map.get_mut(&key) {
                mutate_json(child, rng);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() && !stop => {
            let i = rng.below(items.len());
            mutate_json(&mut items[i], rng);
        }
        _ => *value = wild_json(rng),
    }
}

/// A mutated version of `good` (a file named `name`).
fn mutated(name: &str, good: &[u8], i: usize, rng: &mut SplitMix) -> Vec<u8> {
    if name.ends_with(".json") && i % 2 == 1 {
        let mut v: serde_json::Value = serde_json::from_slice(good).unwrap();
        for _ in 0..=rng.below(3) {
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
    let mut rng = SplitMix::new(seed);
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

#[test]
fn mutated_run_directories_are_refused_or_read_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut run = SyntheticRun::long_tailed(class_names(5), 3);
    run.epochs = 3;
    run.test_per_class = 8;
    write_run(&dir, &run).unwrap();
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

type ColumnEdit =
    fn(parquet::file::metadata::ColumnChunkMetaDataBuilder) -> parquet::file::metadata::ColumnChunkMetaDataBuilder;

/// `bytes` (a Parquet file) with its footer rewritten after `edit` changed the metadata of
/// the first column chunk of row group 0: well-formed metadata that lies.
fn with_footer(bytes: &[u8], edit: ColumnEdit) -> Vec<u8> {
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let data_end = n - 8 - footer_len;
    let metadata = ParquetMetaDataReader::decode_metadata(&bytes[data_end..n - 8]).unwrap();
    let mut groups = metadata.row_groups().to_vec();
    let group = groups.remove(0);
    let mut columns = group.columns().to_vec();
    columns[0] = edit(columns[0].clone().into_builder()).build().unwrap();
    groups.insert(0, group.into_builder().set_column_metadata(columns).build().unwrap());
    let metadata = metadata.into_builder().set_row_groups(groups).build();
    let mut out = bytes[..data_end].to_vec();
    ParquetMetaDataWriter::new(&mut out, &metadata).finish().unwrap();
    out
}

#[test]
fn lying_parquet_footers_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut run = SyntheticRun::long_tailed(class_names(3), 1);
    run.epochs = 2;
    write_run(&dir, &run).unwrap();
    let edits: [(&str, ColumnEdit); 3] = [
        ("a negative chunk size", |c| c.set_total_compressed_size(-8)),
        ("a negative page offset", |c| c.set_data_page_offset(-5).set_dictionary_page_offset(None)),
        ("a 1 TiB column chunk", |c| c.set_total_compressed_size(1 << 40)),
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
