//! Which images a run validates on: the dataset's own validation split when it has one
//! (held out by `lt-data build --val-per-class` before the long-tail cut, balanced), else
//! `--val-fraction` of the subset carved per class (the fallback for datasets built without
//! one: a tail class then gives up some of its few training images), else none.

use crate::config::TrainConfig;
use crate::loader::{epoch_order, mix};

use super::Dataset;

/// Where a run's validation images come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValidationSource {
    /// The dataset's `validation.parquet`, this many images per class.
    Dataset { per_class: u64 },
    /// `--val-fraction` of each class of the subset.
    Carved { fraction: f64 },
    /// No validation.
    None,
}

/// A run's training and validation images (train-split indices, ascending, disjoint).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSplit {
    pub train: Vec<u32>,
    pub validation: Vec<u32>,
    pub source: ValidationSource,
}

impl Dataset {
    /// The training and validation images of a run of `cfg`. With a validation split in the
    /// dataset the whole subset trains and `--val-fraction` is ignored (said on stderr when
    /// it was given): the dataset's split is the honest one.
    pub fn training_split(&self, cfg: &TrainConfig) -> TrainingSplit {
        if let Some(v) = &self.info.validation {
            if cfg.val_fraction > 0.0 {
                eprintln!(
                    "lt-train: {} has a validation split ({} images per class, held out before the long-tail cut); \
                     validating on it, not on --val-fraction {} of the subset",
                    self.dir.display(),
                    v.per_class,
                    cfg.val_fraction
                );
            }
            return TrainingSplit {
                train: self.subset.clone(),
                validation: self.validation.clone(),
                source: ValidationSource::Dataset { per_class: v.per_class },
            };
        }
        let (train, validation) =
            carve_validation(&self.subset, &self.train.labels, self.num_classes(), cfg.val_fraction, cfg.seed);
        let source = if cfg.val_fraction > 0.0 {
            ValidationSource::Carved { fraction: cfg.val_fraction }
        } else {
            ValidationSource::None
        };
        TrainingSplit { train, validation, source }
    }
}

/// Splits the subset into (train, val): per class, a seeded choice of round(n_c · fraction)
/// images (at least one when the class has two or more) goes to validation.
pub fn carve_validation(
    subset: &[u32],
    labels: &[u16],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<u32>, Vec<u32>) {
    if fraction <= 0.0 {
        return (subset.to_vec(), Vec::new());
    }
    let mut by_class = vec![Vec::new(); num_classes];
    for &i in subset {
        by_class[labels[i as usize] as usize].push(i);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (c, members) in by_class.into_iter().enumerate() {
        let order = epoch_order(&members, mix(seed, 0x56414c, c as u64, 0), 0, true);
        let k = ((members.len() as f64 * fraction).round() as usize).max(usize::from(members.len() >= 2));
        val.extend_from_slice(&order[..k.min(order.len())]);
        train.extend_from_slice(&order[k.min(order.len())..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}
