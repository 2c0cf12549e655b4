//! Long-tail profiles: how many training images each class keeps, and which ones (pure).

use std::path::Path;

use rand::seq::SliceRandom;
use serde_json::json;

use crate::error::DataError;
use crate::rng;

/// A long-tail profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// `n_i = floor(n_max * (1/IF)^(i/(C-1)))` (Cao et al.).
    Exp { imbalance: f64, n_max: Option<u64>, shuffle_classes: bool },
    /// The first floor(C/2) classes keep `n_max`, the others `floor(n_max/IF)`.
    Step { imbalance: f64, n_max: Option<u64>, shuffle_classes: bool },
    /// Explicit per-class counts.
    Counts(Vec<u64>),
    /// Explicit source indices into the train split; `origin` is recorded in dataset.json.
    Indices { origin: String, indices: Vec<u32> },
    /// The whole training split.
    Balanced,
}

/// The seed project's per-class counts.
pub const SEED_COUNTS: [u64; 10] = [1865, 2677, 3602, 916, 4354, 4061, 892, 1718, 3417, 152];

impl Profile {
    /// The profile name used on the command line and in dataset.json.
    pub fn kind(&self) -> &'static str {
        match self {
            Profile::Exp { .. } => "exp",
            Profile::Step { .. } => "step",
            Profile::Counts(_) => "counts",
            Profile::Indices { .. } => "indices",
            Profile::Balanced => "balanced",
        }
    }

    /// A JSON description of the profile and its parameters (for dataset.json).
    pub fn describe(&self, source_counts: &[u64], seed: u64) -> serde_json::Value {
        match self {
            Profile::Exp { imbalance, n_max, shuffle_classes }
            | Profile::Step { imbalance, n_max, shuffle_classes } => {
                let n_max = n_max.unwrap_or_else(|| default_n_max(source_counts));
                json!({
                    "kind": self.kind(),
                    "imbalance": imbalance,
                    "n_max": n_max,
                    "shuffle_classes": shuffle_classes,
                    "class_order": class_order(source_counts.len(), *shuffle_classes, seed),
                })
            }
            Profile::Counts(c) => json!({ "kind": "counts", "counts": c }),
            Profile::Indices { origin, indices } => {
                json!({ "kind": "indices", "file": origin, "count": indices.len() })
            }
            Profile::Balanced => json!({ "kind": "balanced" }),
        }
    }
}

/// A number as a user would write it: 100, 2.5, 1e308 (not 309 digits).
fn show(x: f64) -> String {
    if x.abs() >= 1e9 { format!("{x:e}") } else { format!("{x}") }
}

fn default_n_max(source_counts: &[u64]) -> u64 {
    source_counts.iter().copied().min().unwrap_or(0)
}

fn check_imbalance(imbalance: f64) -> Result<(), DataError> {
    if !imbalance.is_finite() || imbalance < 1.0 {
        return Err(DataError::Invalid(format!(
            "imbalance factor {imbalance} must be a finite number >= 1 (e.g. 100 for CIFAR-10-LT)"
        )));
    }
    Ok(())
}

/// The order in which classes receive the profile's counts: the natural order or a seeded
/// permutation. Position i of the profile goes to class `order[i]`.
pub fn class_order(num_classes: usize, shuffle: bool, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..num_classes).collect();
    if shuffle {
        order.shuffle(&mut rng::stream(seed, "class-order", 0));
    }
    order
}

/// The exponential profile's counts in profile order (before any class permutation).
pub fn exp_counts(num_classes: usize, n_max: u64, imbalance: f64) -> Result<Vec<u64>, DataError> {
    check_imbalance(imbalance)?;
    if num_classes == 1 {
        return Ok(vec![n_max]);
    }
    let ratio = 1.0 / imbalance;
    Ok((0..num_classes)
        .map(|i| {
            let x = n_max as f64 * ratio.powf(i as f64 / (num_classes - 1) as f64);
            x.floor() as u64
        })
        .collect())
}

/// The step profile's counts in profile order.
pub fn step_counts(num_classes: usize, n_max: u64, imbalance: f64) -> Result<Vec<u64>, DataError> {
    check_imbalance(imbalance)?;
    let low = (n_max as f64 / imbalance).floor() as u64;
    Ok((0..num_classes).map(|i| if i < num_classes / 2 { n_max } else { low }).collect())
}

/// Per-class target counts (indexed by label) for every profile except `Indices`.
pub fn target_counts(profile: &Profile, source_counts: &[u64], seed: u64) -> Result<Vec<u64>, DataError> {
    let c = source_counts.len();
    let permuted = |counts: Vec<u64>, shuffle: bool| {
        let order = class_order(c, shuffle, seed);
        let mut out = vec![0; c];
        for (i, &class) in order.iter().enumerate() {
            out[class] = counts[i];
        }
        out
    };
    match profile {
        Profile::Exp { imbalance, n_max, shuffle_classes } => {
            let n_max = n_max.unwrap_or_else(|| default_n_max(source_counts));
            Ok(permuted(exp_counts(c, n_max, *imbalance)?, *shuffle_classes))
        }
        Profile::Step { imbalance, n_max, shuffle_classes } => {
            let n_max = n_max.unwrap_or_else(|| default_n_max(source_counts));
            Ok(permuted(step_counts(c, n_max, *imbalance)?, *shuffle_classes))
        }
        Profile::Counts(counts) => {
            if counts.len() != c {
                return Err(DataError::Invalid(format!(
                    "--counts gives {} numbers but the source has {c} classes; give one count per class",
                    counts.len()
                )));
            }
            Ok(counts.clone())
        }
        Profile::Balanced => Ok(source_counts.to_vec()),
        Profile::Indices { .. } => Err(DataError::Invalid("the indices profile has no target counts".into())),
    }
}

/// Count the labels of a split per class.
pub fn count_labels(labels: &[u16], num_classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; num_classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

/// The long-tailed training subset: source indices into the train split, sorted.
///
/// Within each class the source's images (in source order) are shuffled with a stream derived
/// from `seed` and the class, and the first `n_c` are kept.
///
/// Every profile but `Indices` must leave each class at least one image: a class the source
/// lacks, an imbalance factor above n_max (the tail rounds down to 0) or a count of 0 is a
/// [`DataError::EmptyClass`]. An indices list is taken as given.
pub fn select_subset(
    labels: &[u16],
    class_names: &[String],
    profile: &Profile,
    seed: u64,
) -> Result<Vec<u32>, DataError> {
    select_subset_after(labels, class_names, profile, seed, &[])
}

/// As [`select_subset`], from the train split without the images of `held_out` (the
/// validation split, see [`crate::validation`]): counts, the default `n_max` and the draw
/// concern the remaining images only, and with nothing held out the subset is exactly
/// [`select_subset`]'s. An indices list must not name a held-out image.
pub fn select_subset_after(
    labels: &[u16],
    class_names: &[String],
    profile: &Profile,
    seed: u64,
    held_out: &[u32],
) -> Result<Vec<u32>, DataError> {
    let c = class_names.len();
    let mut is_held = vec![false; labels.len()];
    for &i in held_out {
        check_index_in(i, labels.len())?;
        is_held[i as usize] = true;
    }
    if let Profile::Indices { indices, .. } = profile {
        // An explicit list is taken as given, empty classes included: it may reproduce a
        // published subset exactly.
        check_indices(indices, labels.len())?;
        if let Some(&i) = indices.iter().find(|&&i| is_held[i as usize]) {
            return Err(DataError::Invalid(format!(
                "index {i} of the indices list is also in the validation split; the two must be disjoint"
            )));
        }
        let mut out = indices.clone();
        out.sort_unstable();
        return Ok(out);
    }
    let held_counts = count_labels(&held_out.iter().map(|&i| labels[i as usize]).collect::<Vec<_>>(), c);
    let source_counts: Vec<u64> =
        count_labels(labels, c).iter().zip(&held_counts).map(|(&all, &held)| all - held).collect();
    let empty =
        |class: usize, reason: String| DataError::EmptyClass { class, name: class_names[class].clone(), reason };
    if let Some(class) = source_counts.iter().position(|&n| n == 0) {
        return Err(empty(class, "the source's train split has no image of it".into()));
    }
    let targets = target_counts(profile, &source_counts, seed)?;
    if let Some(class) = targets.iter().position(|&n| n == 0) {
        let reason = match profile {
            Profile::Exp { imbalance, n_max, .. } | Profile::Step { imbalance, n_max, .. } => {
                let n_max = n_max.unwrap_or_else(|| default_n_max(&source_counts));
                let why = if n_max == 0 {
                    "n_max is 0".to_string()
                } else if *imbalance > n_max as f64 {
                    format!("imbalance factor {} exceeds n_max {n_max}", show(*imbalance))
                } else {
                    format!("imbalance factor {} with n_max {n_max} rounds the tail down", show(*imbalance))
                };
                format!(
                    "{why} (the tail class keeps floor(n_max / IF) = 0 images); use --imbalance of at most {n_max} or a \
                     larger --n-max"
                )
            }
            _ => "--counts gives it 0; give every class at least 1".into(),
        };
        return Err(empty(class, reason));
    }
    for (class, (&want, &have)) in targets.iter().zip(&source_counts).enumerate() {
        if want > have {
            let name = class_names[class].clone();
            return Err(match held_counts[class] {
                0 => DataError::CountTooLarge { class, name, requested: want, available: have },
                held => DataError::CountTooLargeAfterValidation {
                    class,
                    name,
                    requested: want,
                    available: have,
                    held_out: held,
                    total: have + held,
                },
            });
        }
    }
    let mut per_class: Vec<Vec<u32>> = source_counts.iter().map(|&n| Vec::with_capacity(n as usize)).collect();
    for (i, &l) in labels.iter().enumerate() {
        if !is_held[i] {
            per_class[l as usize].push(i as u32);
        }
    }
    let mut out = Vec::with_capacity(targets.iter().sum::<u64>() as usize);
    for (class, mut members) in per_class.into_iter().enumerate() {
        members.shuffle(&mut rng::stream(seed, "subset", class as u64));
        out.extend_from_slice(&members[..targets[class] as usize]);
    }
    out.sort_unstable();
    Ok(out)
}

fn check_index_in(index: u32, split_len: usize) -> Result<(), DataError> {
    if index as usize >= split_len {
        return Err(DataError::Invalid(format!(
            "held-out index {index} is out of range: the train split has {split_len} images"
        )));
    }
    Ok(())
}

/// Check explicit indices: each within the split and none repeated.
pub fn check_indices(indices: &[u32], split_len: usize) -> Result<(), DataError> {
    let mut seen = vec![u32::MAX; split_len];
    for (pos, &idx) in indices.iter().enumerate() {
        if idx as usize >= split_len {
            return Err(DataError::Invalid(format!(
                "index {idx} (entry {}) is out of range: the train split has {split_len} images",
                pos + 1
            )));
        }
        if seen[idx as usize] != u32::MAX {
            return Err(DataError::Invalid(format!(
                "index {idx} appears twice (entries {} and {}); each image may be listed once",
                seen[idx as usize] + 1,
                pos + 1
            )));
        }
        seen[idx as usize] = pos as u32;
    }
    Ok(())
}

/// The most bytes [`read_indices_file`] reads for a train split of `split_len` images:
/// 64 bytes per image (an index, padding and comments) plus 1 MiB.
pub fn indices_file_limit(split_len: usize) -> u64 {
    (split_len as u64).saturating_mul(64).saturating_add(1 << 20)
}

/// Read an indices file (one train-split index per line; blank lines and `#` comments are
/// skipped), checking range and duplicates with line numbers. At most
/// [`indices_file_limit`] bytes are read: a file of `split_len` distinct indices is far
/// smaller, and a device such as /dev/zero must not fill memory.
pub fn read_indices_file(path: &Path, split_len: usize) -> Result<Vec<u32>, DataError> {
    let limit = indices_file_limit(split_len);
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let what = format!("the indices of a train split of {split_len} images (64 bytes per image + 1 MiB)");
    let text = crate::source::read_bounded_text(path, file, limit, &what, "one index per line")?;
    let mut out = Vec::new();
    let mut first_line = vec![0usize; split_len];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let idx: u32 = t.parse().map_err(|_| DataError::Line {
            path: path.into(),
            line,
            message: format!("`{t}` is not a non-negative integer index"),
        })?;
        if idx as usize >= split_len {
            return Err(DataError::Line {
                path: path.into(),
                line,
                message: format!("index {idx} is out of range: the train split has {split_len} images"),
            });
        }
        if first_line[idx as usize] != 0 {
            return Err(DataError::Line {
                path: path.into(),
                line,
                message: format!(
                    "index {idx} is duplicated (first on line {}); list each image once",
                    first_line[idx as usize]
                ),
            });
        }
        first_line[idx as usize] = line;
        out.push(idx);
    }
    if out.is_empty() {
        return Err(DataError::Format { path: path.into(), message: "no indices in the file".into() });
    }
    Ok(out)
}
