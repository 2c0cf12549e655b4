//! Mutation fuzzing of pipeline files (spec.rs): the shipped pipelines/*.toml, edited byte by
//! byte and value by value, and hostile `--set` overrides. Every input must resolve to
//! settings lt-train accepts, or give an error naming the file (and the key's path or the
//! TOML line), never a panic. Seeded and deterministic; `LT_FUZZ_ITERS=N` runs N cases per
//! file instead of the default. (Memory is bounded by the input: pipeline files are read up
//! to `MAX_PIPELINE_BYTES`, and the TOML parser limits nesting.)

use std::panic::AssertUnwindSafe;
use std::path::Path;

use lt_pipeline::{Overrides, PipelineError, load};

use crate::fixture::repo_root;

fn iterations(default: usize) -> usize {
    std::env::var("LT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// SplitMix64: a seeded, dependency-free source of choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// TOML values from the edges: wrong types, out-of-range and non-finite numbers, paths out of
/// the tree, empty and nested structures.
const WILD_VALUES: [&str; 30] = [
    "-1",
    "0",
    "4294967295",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "0.5",
    "\"\"",
    "\"../../..\"",
    "\"/\"",
    "\".\"",
    "\"bogus\"",
    "\"synthetic:99999999999\"",
    "\"step:0,0\"",
    "[]",
    "[[]]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "true",
    "1979-05-27T07:32:00Z",
    "\"\\u0000\"",
    "'''\n'''",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
];

/// Keys worth planting where they do not belong.
const KEYS: [&str; 12] = [
    "epochs",
    "out",
    "data",
    "name",
    "source",
    "resample",
    "experiment",
    "drw",
    "focal_gamma",
    "batch_size",
    "beta",
    "x",
];

/// One edit of a TOML text: a value replaced, a line deleted, duplicated or moved, a header
/// or key planted, or a byte changed.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let at = rng.below(lines.len());
    match rng.below(11) {
        0..=4 => {
            // Replace the value of a `key = value` line (any line, when it has none).
            let line = &lines[at];
            let key = line.split_once('=').map_or(line.as_str(), |(k, _)| k).trim().to_string();
            let key = if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
                rng.pick(&KEYS).to_string()
            } else {
                key
            };
            lines[at] = format!("{key} = {}", rng.pick(&WILD_VALUES));
        }
        5 => {
            lines.remove(at);
        }
        6 => {
            let line = lines[at].clone();
            let to = rng.below(lines.len() + 1);
            lines.insert(to, line);
        }
        7 => {
            let header =
                *rng.pick(&["[data]", "[train]", "[report]", "[[experiment]]", "[experiment]", "[data.x]", "[[data]]"]);
            lines.insert(at, header.to_string());
        }
        8 => lines.insert(at, format!("{} = {}", rng.pick(&KEYS), rng.pick(&WILD_VALUES))),
        9 => {
            let line = lines.remove(at);
            let to = rng.below(lines.len() + 1);
            lines.insert(to, line);
        }
        _ => {
            let mut bytes = lines.join("\n").into_bytes();
            if !bytes.is_empty() {
                let i = rng.below(bytes.len());
                bytes[i] = *rng.pick(b"=[]{}\"'#.,\n\\ 0a-");
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    lines.join("\n") + "\n"
}

/// Hostile `--set` overrides.
fn wild_set(rng: &mut Rng) -> String {
    let path = *rng.pick(&[
        "train.epochs",
        "data.imbalance",
        "experiment.baseline.lr",
        "experiment.nobody.lr",
        "experiment..lr",
        "report.shots",
        "data",
        "train",
        "out",
        "a.b.c.d",
        "",
        ".",
        "experiment.baseline.name",
        "train.data",
    ]);
    if rng.below(8) == 0 {
        return path.to_string();
    }
    format!("{path}={}", rng.pick(&WILD_VALUES))
}

fn check(file: &Path, cwd: &Path, overrides: &Overrides, what: &str) {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| load(file, overrides, cwd)))
        .unwrap_or_else(|_| panic!("{what}: panicked (see the message above)"));
    match result {
        Ok(p) => {
            for e in &p.experiment {
                e.config.validate().unwrap_or_else(|err| panic!("{what}: resolved to an invalid experiment: {err}"));
            }
            let _ = p.to_toml();
        }
        Err(PipelineError::Set { setting, message }) => {
            assert!(overrides.set.contains(&setting), "{what}: --set error names no setting: {message}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&file.display().to_string()), "{what}: the error does not name the file: {msg}");
        }
    }
}

#[test]
fn mutated_pipeline_files_resolve_or_name_the_file_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.toml");
    let mut seeds: Vec<_> = std::fs::read_dir(repo_root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty());
    let mut rng = Rng(0x70_9e11);
    for seed in &seeds {
        let good = std::fs::read_to_string(seed).unwrap();
        for i in 0..iterations(250) {
            let mut text = good.clone();
            for _ in 0..=rng.below(2) {
                text = mutate(&text, &mut rng);
            }
            std::fs::write(&file, &text).unwrap();
            let overrides =
                Overrides { set: (0..rng.below(3)).map(|_| wild_set(&mut rng)).collect(), ..Default::default() };
            check(&file, tmp.path(), &overrides, &format!("{} case {i} ({:?})", seed.display(), overrides.set));
        }
    }
}

#[test]
fn hostile_pipeline_files_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.toml");
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff, 0xfe, 0x00],
        b"[data]\nsource = \"synthetic:10\"\n\xc3\x28".to_vec(),
        format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        format!("{} = 1", vec!["a"; 10_000].join(".")).into_bytes(),
        vec![b'#'; (lt_pipeline::spec::MAX_PIPELINE_BYTES + 1) as usize],
    ];
    for (i, bytes) in cases.iter().enumerate() {
        std::fs::write(&file, bytes).unwrap();
        check(&file, tmp.path(), &Overrides::default(), &format!("hostile case {i}"));
        assert!(load(&file, &Overrides::default(), tmp.path()).is_err(), "hostile case {i} resolved");
    }
    // A file too large to be a pipeline says so, without reading it all.
    let e = load(&file, &Overrides::default(), tmp.path()).unwrap_err().to_string();
    assert!(e.contains("larger than"), "{e}");
}
