//! Mutation fuzzing of every reader of user files: CIFAR binary batches, CIFAR python pickles,
//! folder list files and indices files. Stable toolchain, no extra dependency: valid files
//! made by code are mutated (bit flips, byte insertions and deletions, truncation, splicing,
//! repeated chunks, large integers and format tokens) with a seeded ChaCha stream, next to
//! pure random inputs. For every input the reader must not panic, must fail with an error
//! that names the file, and must stay within bounded memory, measured by the counting global
//! allocator below.
//!
//! Deterministic and bounded: a few thousand inputs in all, well under 30 s in a debug build.
//! `LT_FUZZ_ITERS=N` runs N inputs per reader instead (e.g. 100000 for a long session);
//! `LT_FUZZ_SEED=S` changes the stream. A failing input is written to
//! `target/tmp/lt-data-fuzz-*.bin` and its reader, iteration and seed are printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use lt_data::source::folder;
use lt_data::source::pickle::{self, load_cifar10_py};
use lt_data::source::{SourceOptions, SourceSpec, load};
use lt_data::{DataError, NoProgress};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::helpers::records;
use crate::pickle::{py2_batch, py2_meta, py3_batch, temp_py_dir};

// ---------------------------------------------------------------------------------------
// Memory accounting

/// The system allocator, counting per thread the bytes live since [`measure`] started and
/// their peak, and over all threads the largest single request (work a reader hands to
/// rayon's threads counts there). Thread-locals with `const` initialisers and no destructor
/// never allocate, so the allocator can use them.
struct Counting;

/// Largest single request on any thread since the last [`measure`] began.
static LARGEST_ANY: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    LARGEST_ANY.fetch_max(size, Ordering::Relaxed);
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size as isize)));
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are side effects only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Memory used while a closure ran.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Most bytes live at once on the calling thread (allocated and not yet freed by it).
    pub peak: usize,
    /// Largest single allocation request, on any thread. Other tests run concurrently, but
    /// none of this binary's asks for more than a few MB at once; a concurrent `measure`
    /// restarts the count, so a violation may be missed, never invented.
    pub largest: usize,
}

/// Run `f` and report the memory it used.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    LARGEST_ANY.store(0, Ordering::Relaxed);
    let r = f();
    let largest = LARGEST.with(Cell::get).max(LARGEST_ANY.load(Ordering::Relaxed));
    let usage = Usage { peak: PEAK.with(Cell::get).max(0) as usize, largest };
    (r, usage)
}

/// The bound every input must stay under (peak and single allocation).
const MEMORY_LIMIT: usize = 512 << 20;

// ---------------------------------------------------------------------------------------
// The harness

fn iterations(default: usize) -> usize {
    std::env::var("LT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed(reader: &str) -> u64 {
    let base: u64 = std::env::var("LT_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    reader.bytes().fold(base ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3))
}

/// Run one input through a reader and check the properties; on a violation save the input
/// and fail with everything needed to reproduce it.
fn check<T>(reader: &str, iter: usize, input: &[u8], names: &[&str], run: impl FnOnce() -> Result<T, DataError>) {
    let (outcome, usage) = measure(|| catch_unwind(AssertUnwindSafe(run)));
    let problem = match &outcome {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some(format!("panicked: {msg}"))
        }
        Ok(Err(e)) => {
            let msg = e.to_string();
            if !names.iter().any(|n| msg.contains(n)) {
                Some(format!("error does not name the file (any of {names:?}): {msg}"))
            } else if msg.len() > 64 << 10 {
                Some(format!("error message of {} bytes (it should not echo the input)", msg.len()))
            } else {
                None
            }
        }
        Ok(Ok(_)) => None,
    };
    let problem = problem.or_else(|| {
        (usage.peak > MEMORY_LIMIT || usage.largest > MEMORY_LIMIT)
            .then(|| format!("memory {usage:?} over the limit of {MEMORY_LIMIT} bytes"))
    });
    if let Some(problem) = problem {
        let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lt-data-fuzz-{reader}-{iter}.bin"));
        let _ = std::fs::write(&saved, input);
        panic!(
            "fuzz {reader}, iteration {iter} (LT_FUZZ_SEED={}): {problem}\n  input: {} bytes, saved to {}",
            std::env::var("LT_FUZZ_SEED").unwrap_or_else(|_| "0".into()),
            input.len(),
            saved.display()
        );
    }
}

/// Integers that sit on boundaries, written into length fields.
const INTERESTING: [u64; 14] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    1 << 24,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// Apply 1..=8 random mutations to `base`; `tokens` are format fragments worth inserting and
/// `corpus` the other seeds to splice from. The result stays under `max_len` bytes.
fn mutate(rng: &mut ChaCha8Rng, base: &[u8], tokens: &[&[u8]], corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    let rounds = 1 + (rng.random_range(0..8u32) * rng.random_range(0..8u32)) / 8;
    for _ in 0..rounds {
        let pos = |rng: &mut ChaCha8Rng, v: &Vec<u8>| rng.random_range(0..=v.len());
        match rng.random_range(0..10u32) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8u32);
            }
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            2 => {
                let i = pos(rng, &v);
                let n = rng.random_range(1..9usize);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                v.splice(i..i, bytes);
            }
            3 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                let n = rng.random_range(1..=(v.len() - i).min(64));
                v.drain(i..i + n);
            }
            4 => {
                let i = pos(rng, &v);
                v.truncate(i);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = rng.random_range(a..=other.len().min(a + 256));
                    let i = pos(rng, &v);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            6 => {
                // A large integer, little-endian, 1, 2, 4 or 8 bytes, overwriting.
                let x = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.random_range(0..4)];
                let bytes = &x.to_le_bytes()[..width];
                let i = pos(rng, &v);
                let end = (i + width).min(v.len());
                v.splice(i..end, bytes.iter().copied());
            }
            7 if !v.is_empty() => {
                // Repeat a chunk: nesting, memo traffic, long lines.
                let a = rng.random_range(0..v.len());
                let b = rng.random_range(a..=v.len().min(a + 16));
                let times = rng.random_range(1..200usize);
                let chunk = v[a..b].to_vec();
                for _ in 0..times {
                    v.splice(b..b, chunk.iter().copied());
                }
            }
            _ if !tokens.is_empty() => {
                let t = tokens[rng.random_range(0..tokens.len())];
                let i = pos(rng, &v);
                v.splice(i..i, t.iter().copied());
            }
            _ => {}
        }
        v.truncate(max_len);
    }
    v
}

fn random_bytes(rng: &mut ChaCha8Rng, max_len: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max_len);
    (0..n).map(|_| rng.random()).collect()
}

/// One input: mostly a mutated seed, sometimes pure random bytes.
fn next_input(rng: &mut ChaCha8Rng, corpus: &[Vec<u8>], tokens: &[&[u8]], max_len: usize) -> Vec<u8> {
    if rng.random_range(0..10u32) == 0 {
        random_bytes(rng, 2048.min(max_len))
    } else {
        let base = &corpus[rng.random_range(0..corpus.len())];
        mutate(rng, base, tokens, corpus, max_len)
    }
}

// ---------------------------------------------------------------------------------------
// Readers

/// Pickle opcodes with their arguments, large lengths and memo indices among them.
const PICKLE_TOKENS: [&[u8]; 24] = [
    b"\x80\x02",
    b"\x80\x04",
    b"(",
    b"]",
    b"}",
    b")",
    b"e",
    b"a",
    b"u",
    b"s",
    b"t",
    b"\x85",
    b"\x87",
    b"h\x00",
    b"q\x00",
    b"\x94",
    b"r\xff\xff\xff\xff",
    b"j\x00\x00\x00\x01",
    b"T\xff\xff\xff\x7f",
    b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x8a\x09\x01",
    b"J\xff\xff\xff\xff",
    b"cnumpy\ndtype\n",
    b"R",
];

fn pickle_corpus() -> Vec<Vec<u8>> {
    let mut bomb = b"\x80\x02]q\x00".to_vec();
    for _ in 0..12 {
        bomb.extend_from_slice(b"h\x00\x86q\x00");
    }
    bomb.push(b'.');
    let mut deep = b"\x80\x02".to_vec();
    deep.extend([b']'; 40]);
    deep.extend([b'a'; 39]);
    deep.push(b'.');
    vec![py2_batch(&records(3, 1, 10)), py3_batch(&records(2, 2, 10)), py2_meta(), bomb, deep]
}

#[test]
fn fuzz_pickle_parser() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("pickle"));
    let corpus = pickle_corpus();
    let path = Path::new("/fuzz/data_batch_1");
    for iter in 0..iterations(6000) {
        let mut input = next_input(&mut rng, &corpus, &PICKLE_TOKENS, 64 << 10);
        if rng.random_range(0..4u32) == 0 && input.len() >= 2 {
            input[..2].copy_from_slice(b"\x80\x02"); // past the protocol check more often
        }
        check("pickle", iter, &input, &["/fuzz/data_batch_1"], || pickle::parse(path, &input));
    }
}

/// The whole python reader (file reading, batch dict, labels, shapes, meta) over a directory
/// whose one mutated file changes each time.
#[test]
fn fuzz_cifar_python_files() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("cifar-py"));
    let (tmp, _, _) = temp_py_dir();
    std::fs::write(tmp.path().join("batches.meta"), py2_meta()).unwrap();
    let corpus = pickle_corpus();
    for iter in 0..iterations(600) {
        let name = ["data_batch_2", "test_batch", "batches.meta"][rng.random_range(0..3)];
        let file = tmp.path().join(name);
        let original = std::fs::read(&file).unwrap();
        let mut seeds = corpus.clone();
        seeds.push(original.clone());
        let input = next_input(&mut rng, &seeds, &PICKLE_TOKENS, 64 << 10);
        std::fs::write(&file, &input).unwrap();
        check("cifar-py", iter, &input, &[file.to_str().unwrap()], || load_cifar10_py(tmp.path(), &NoProgress));
        std::fs::write(&file, original).unwrap();
    }
}

/// CIFAR-10 and CIFAR-100 binary batches: sizes, labels, class-name files, and now and then
/// a huge sparse file (the file size is the format's only length field).
#[test]
fn fuzz_cifar_binary() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("cifar-bin"));
    let tmp = tempfile::tempdir().unwrap();
    let c10 = tmp.path().join("c10");
    crate::helpers::cifar10_dir(&c10, 3, 2);
    std::fs::write(c10.join("batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n").unwrap();
    let c100 = tmp.path().join("c100");
    std::fs::create_dir(&c100).unwrap();
    let two_labels = |n: usize, seed: u64| {
        let mut b = Vec::new();
        for (l, img) in records(n, seed, 100) {
            b.extend_from_slice(&[l / 5, l]);
            b.extend_from_slice(&img);
        }
        b
    };
    std::fs::write(c100.join("train.bin"), two_labels(3, 1)).unwrap();
    std::fs::write(c100.join("test.bin"), two_labels(2, 2)).unwrap();
    let tokens: [&[u8]; 4] = [&[10], &[99], &[100], &[255]];
    for iter in 0..iterations(800) {
        let (dir, name, kind) = match rng.random_range(0..6u32) {
            0 => (&c10, "batches.meta.txt", 10),
            1 => (&c10, "test_batch.bin", 10),
            2 | 3 => (&c10, "data_batch_4.bin", 10),
            4 => (&c100, "train.bin", 100),
            _ => (&c100, "test.bin", 20),
        };
        let file = dir.join(name);
        let original = std::fs::read(&file).unwrap();
        // Mutations that keep the size exercise the labels; the others, the size checks.
        let input = next_input(&mut rng, std::slice::from_ref(&original), &tokens, 16 << 10);
        std::fs::write(&file, &input).unwrap();
        if rng.random_range(0..20u32) == 0 {
            // Sparse: 3 GB or 825 GB of zeros, no disk used (skipped where the file system
            // refuses such a size).
            let records = [1u64 << 20, 1 << 28][rng.random_range(0..2)];
            let _ = std::fs::File::options().write(true).open(&file).unwrap().set_len(records * 3073);
        }
        let names = [file.to_str().unwrap()];
        let spec = match kind {
            10 => SourceSpec::Cifar10(dir.clone()),
            _ => SourceSpec::Cifar100(dir.clone()),
        };
        // A small --max-source-bytes: a sparse file is refused by its size, never read.
        let opts = SourceOptions { coarse: kind == 20, max_source_bytes: 16 << 20, ..SourceOptions::default() };
        check("cifar-bin", iter, &input, &names, || load(&spec, &opts, &NoProgress));
        std::fs::write(&file, original).unwrap();
    }
}

/// Keep generated list lines inside the temporary directory: no absolute paths, no `..`.
fn confine(list: &mut [u8]) {
    for i in 0..list.len() {
        if list[i] == b'/' && (i == 0 || list[i - 1] == b'\n' || list[i - 1].is_ascii_whitespace()) {
            list[i] = b'_';
        }
        if list[i] == b'.' && i > 0 && list[i - 1] == b'.' {
            list[i] = b'_';
        }
    }
}

/// A random `path label` line.
fn list_line(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let paths = ["imgs/a.png", "imgs/b.png", "imgs/junk.png", "imgs/missing.png", "imgs", "", "imgs/a.png x"];
    let labels = ["0", "1", "2", "3", "65535", "65536", "60000", "-1", "x", "99999999999", "", "1.5", "0x1"];
    let p = paths[rng.random_range(0..paths.len())];
    let l = labels[rng.random_range(0..labels.len())];
    let sep = [" ", "\t", "  ", ""][rng.random_range(0..4)];
    format!("{p}{sep}{l}\n").into_bytes()
}

/// Folder list files (train and test lists) over a few real, broken and missing images.
#[test]
fn fuzz_folder_list_files() {
    use image::{Rgb, RgbImage};
    let mut rng = ChaCha8Rng::seed_from_u64(seed("list"));
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    RgbImage::from_fn(5, 4, |x, y| Rgb([x as u8 * 40, y as u8 * 50, 7])).save(imgs.join("a.png")).unwrap();
    RgbImage::from_fn(3, 6, |x, y| Rgb([y as u8, x as u8, 9])).save(imgs.join("b.png")).unwrap();
    let mut junk = std::fs::read(imgs.join("a.png")).unwrap();
    junk.truncate(30);
    std::fs::write(imgs.join("junk.png"), junk).unwrap();
    let train = tmp.path().join("train.txt");
    let test = tmp.path().join("test.txt");
    let base: Vec<Vec<u8>> = vec![
        b"imgs/a.png 0\nimgs/b.png 1\n".to_vec(),
        b"# comment\n\nimgs/b.png\t0\nimgs/a.png 1\nimgs/a.png 2\n".to_vec(),
    ];
    let tokens: [&[u8]; 6] = [b" 60000\n", b" 65535\n", b"\n", b"#", b" -1", b"imgs/a.png "];
    let root = tmp.path().to_str().unwrap().to_string();
    for iter in 0..iterations(800) {
        let mut input = if rng.random_range(0..3u32) == 0 {
            (0..rng.random_range(0..6)).flat_map(|_| list_line(&mut rng)).collect()
        } else {
            next_input(&mut rng, &base, &tokens, 4 << 10)
        };
        confine(&mut input);
        std::fs::write(&train, &input).unwrap();
        let with_test = rng.random_bool(0.5);
        if with_test {
            let mut t: Vec<u8> = (0..rng.random_range(0..3)).flat_map(|_| list_line(&mut rng)).collect();
            confine(&mut t);
            std::fs::write(&test, t).unwrap();
        }
        let opts = SourceOptions {
            size: [1, 4, 9][rng.random_range(0..3)],
            test_list: with_test.then(|| test.clone()),
            ..SourceOptions::default()
        };
        // Every path an error can name lies in the temporary directory.
        check("list", iter, &input, &[&root], || folder::load(&train, &opts, &NoProgress));
    }
}

/// Indices files (`--profile indices --indices FILE`).
#[test]
fn fuzz_indices_files() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("indices"));
    let tmp = tempfile::tempdir().unwrap();
    let file: PathBuf = tmp.path().join("idx.txt");
    let base: Vec<Vec<u8>> = vec![b"0\n3\n5\n# seven\n\n7\n".to_vec(), b"9\n1\n".to_vec()];
    let tokens: [&[u8]; 7] =
        [b"4294967295\n", b"4294967296\n", b"-1\n", b"99999999999999999999\n", b"#", b"\n", b" 2 \n"];
    let names = [file.to_str().unwrap()];
    for iter in 0..iterations(3000) {
        let input = next_input(&mut rng, &base, &tokens, 8 << 10);
        std::fs::write(&file, &input).unwrap();
        let split_len = [0usize, 1, 10, 1000][rng.random_range(0..4)];
        check("indices", iter, &input, &names, || lt_data::profile::read_indices_file(&file, split_len));
    }
}
