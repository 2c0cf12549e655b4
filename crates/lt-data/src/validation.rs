//! The balanced validation split (`lt-data build --val-per-class N`), held out of the train
//! split before the long-tail cut (pure).
//!
//! This is the protocol of ImageNet-LT (Liu et al. 2019) and of the logit-adjustment paper
//! (Menon et al. 2021): validation images are never part of the long-tailed subset, and every
//! class has the same number of them, so a tail class keeps all of its few training images
//! and its validation accuracy rests on as many images as a head class's.

use rand::seq::SliceRandom;

use crate::error::DataError;
use crate::rng;

/// The rule's name, recorded in dataset.json as `validation.rule`.
pub const RULE: &str = "per-class-before-cut";

/// The file of the split inside a dataset directory (`index`, `label`, like `subset.parquet`).
pub const FILE: &str = "validation.parquet";

/// Train-split indices (ascending) of `per_class` images of every class.
///
/// Per class, the class's train-split images outside `reserved` (in source order) are shuffled
/// with the stream `(seed, "validation", class)` and the first `per_class` are held out.
/// `reserved` is the explicit list of the indices profile (a published subset is reproduced
/// exactly, so validation comes from the images it does not list); for every other profile it
/// is empty and the long-tail cut is then drawn from what is left.
///
/// `keep_for_training` images of each class must remain after the hold-out (1 for the profiles
/// that cut the rest, 0 for an indices list): a class with fewer than `per_class +
/// keep_for_training` candidates is an error naming the class and both counts. Capping the
/// class instead would make the split silently unbalanced, the one thing it is for.
pub fn hold_out(
    labels: &[u16],
    class_names: &[String],
    per_class: u64,
    seed: u64,
    reserved: &[u32],
    keep_for_training: u64,
) -> Result<Vec<u32>, DataError> {
    if per_class == 0 {
        return Ok(Vec::new());
    }
    let c = class_names.len();
    let mut is_reserved = vec![false; labels.len()];
    for &i in reserved {
        if let Some(slot) = is_reserved.get_mut(i as usize) {
            *slot = true;
        }
    }
    let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); c];
    for (i, &l) in labels.iter().enumerate() {
        if !is_reserved[i] {
            let Some(members) = candidates.get_mut(l as usize) else {
                return Err(DataError::Invalid(format!("label {l} of train image {i} is outside 0..{c}")));
            };
            members.push(i as u32);
        }
    }
    let mut out = Vec::with_capacity((per_class as usize).saturating_mul(c));
    for (class, mut members) in candidates.into_iter().enumerate() {
        let available = members.len() as u64;
        if available < per_class.saturating_add(keep_for_training) {
            return Err(DataError::ValidationTooLarge {
                class,
                name: class_names[class].clone(),
                per_class,
                keep_for_training,
                available,
                pool: if reserved.is_empty() { "the train split" } else { "the train split outside the indices list" },
            });
        }
        members.shuffle(&mut rng::stream(seed, "validation", class as u64));
        out.extend_from_slice(&members[..per_class as usize]);
    }
    out.sort_unstable();
    Ok(out)
}
