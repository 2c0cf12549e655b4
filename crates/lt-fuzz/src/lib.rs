//! Test support shared by lt's mutation fuzzers (the `fuzz` modules of lt-train's and
//! lt-report's integration tests): a global allocator that refuses, on the fuzzing thread, a
//! request above [`ALLOC_LIMIT`] and counts what one case allocates; [`case`], which runs one
//! input under those limits; and seeded byte and JSON mutations. A test binary installs the
//! allocator with
//!
//! ```text
//! #[global_allocator]
//! static ALLOCATOR: lt_fuzz::Counting = lt_fuzz::Counting;
//! ```
//!
//! `LT_FUZZ_ITERS=N` runs N cases per target instead of each test's default.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The largest single allocation one input may cause.
pub const ALLOC_LIMIT: usize = 512 << 20;
/// The most bytes one input may allocate in all (the fixture is about 100 KiB).
pub const CASE_LIMIT: usize = 1 << 30;

/// The system allocator, refusing (null, so `try_reserve` fails and anything else aborts
/// with the size) a request above the fuzzing thread's limit, and counting what it gives.
pub struct Counting;

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

/// Cases per target: `LT_FUZZ_ITERS`, else `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("LT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs one case under the allocation limits: its result, or a failure naming the case when
/// it panicked or allocated too much.
pub fn case<T>(what: &str, f: impl FnOnce() -> T) -> T {
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

const INTERESTING: [u64; 12] =
    [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x7fff_ffff_ffff_ffff, u64::MAX];

/// 1 to 4 random byte-level edits: bit flips, interesting integers written over 1/2/4/8
/// bytes (either endianness), insertions, deletions, a copied range, a cut.
pub fn mutate_bytes(input: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..7) {
            0 => b[at] ^= 1 << rng.random_range(0..8),
            1 => b[at] = rng.random(),
            2 => {
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.random_range(0..4)];
                let bytes = if rng.random() { v.to_le_bytes() } else { v.to_be_bytes() };
                let src = if bytes[0] == 0 && width < 8 { &bytes[8 - width..] } else { &bytes[..width] };
                for (k, &x) in src.iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + k) {
                        *slot = x;
                    }
                }
            }
            3 => {
                let n = rng.random_range(1..=16);
                let insert: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(at..at, insert);
            }
            4 => {
                let end = (at + rng.random_range(1..=64)).min(b.len());
                b.drain(at..end);
            }
            5 => {
                let end = (at + rng.random_range(1..=64)).min(b.len());
                let chunk = b[at..end].to_vec();
                let to = rng.random_range(0..b.len());
                b.splice(to..to, chunk);
            }
            _ => b.truncate(at),
        }
    }
    b
}

/// A random JSON value, from the edges: huge and negative numbers, wrong types, long and
/// deep structures.
pub fn wild_json(rng: &mut ChaCha8Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.random_range(0..16) {
        0 => json!(null),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(i64::MIN),
        4 => json!(4_294_967_295u64),
        5 => json!(1e308),
        6 => json!(-0.0),
        7 => json!(""),
        8 => json!("../../etc/passwd"),
        9 => json!([]),
        10 => json!({}),
        11 => json!(vec![u64::MAX; 3]),
        12 => json!(rng.random_range(0..100_000u64)),
        13 => json!(vec!["x"; 1000]),
        14 => json!("manifest-../../x.parquet"),
        _ => {
            let mut v = json!(0);
            for _ in 0..rng.random_range(1..200) {
                v = json!([v]);
            }
            v
        }
    }
}

/// Replaces one random node of `value` (found by a random walk) by [`wild_json`], or removes
/// a key of an object on the way.
pub fn mutate_json(value: &mut serde_json::Value, rng: &mut ChaCha8Rng) {
    let stop = rng.random_range(0..4) == 0;
    match value {
        serde_json::Value::Object(map) if !map.is_empty() && !stop => {
            let key = map.keys().nth(rng.random_range(0..map.len())).cloned().unwrap_or_default();
            if rng.random_range(0..8) == 0 {
                map.remove(&key);
            } else if let Some(child) = map.get_mut(&key) {
                mutate_json(child, rng);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() && !stop => {
            let i = rng.random_range(0..items.len());
            mutate_json(&mut items[i], rng);
        }
        _ => *value = wild_json(rng),
    }
}

/// Row group metadata, as [`FooterEdit`] changes it.
pub type GroupMeta = parquet::file::metadata::RowGroupMetaDataBuilder;
/// Column chunk metadata, as [`FooterEdit`] changes it.
pub type ColumnMeta = parquet::file::metadata::ColumnChunkMetaDataBuilder;
/// An edit of row group 0's metadata and of its first column chunk's.
pub type FooterEdit = fn(GroupMeta, ColumnMeta) -> (GroupMeta, ColumnMeta);

/// `bytes` (a Parquet file) with its footer rewritten after `edit` changed the metadata of
/// row group 0 and its first column chunk: well-formed metadata that lies.
pub fn with_footer(bytes: &[u8], edit: FooterEdit) -> Vec<u8> {
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let data_end = n - 8 - footer_len;
    let metadata = ParquetMetaDataReader::decode_metadata(&bytes[data_end..n - 8]).unwrap();
    let mut groups = metadata.row_groups().to_vec();
    let group = groups.remove(0);
    let mut columns = group.columns().to_vec();
    let (group, first) = edit(group.into_builder(), columns[0].clone().into_builder());
    columns[0] = first.build().unwrap();
    groups.insert(0, group.set_column_metadata(columns).build().unwrap());
    let metadata = metadata.into_builder().set_row_groups(groups).build();
    let mut out = bytes[..data_end].to_vec();
    ParquetMetaDataWriter::new(&mut out, &metadata).finish().unwrap();
    out
}
