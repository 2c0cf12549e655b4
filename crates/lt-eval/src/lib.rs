//! lt-eval: imbalance-aware classification metrics as pure functions (no I/O).
//!
//! Everything starts from a [`ConfusionMatrix`] (row = true label, column = prediction) or,
//! for calibration, from the softmax scores. The conventions for classes that have no test
//! samples or that are never predicted are fixed here once, so every caller reports the same
//! numbers:
//!
//! | quantity | class with no samples (support 0) | class never predicted |
//! |---|---|---|
//! | per-class accuracy (recall) | `NaN` | `0` (if it has samples) |
//! | precision | `0` when also never predicted | `0` (scikit-learn's `zero_division=0`) |
//! | F1 = 2·tp / (2·tp + fp + fn) | `0` | `0` |
//! | row of [`ConfusionMatrix::row_normalized`] | all `NaN` | column of zeros |
//!
//! Averages follow scikit-learn / imbalanced-learn defaults:
//! - `balanced_accuracy`: mean recall over classes with support > 0 (scikit-learn's
//!   `balanced_accuracy_score`, which drops classes without samples);
//! - `macro_f1`, `macro_precision`: mean over the classes that occur in the labels or the
//!   predictions (scikit-learn's `f1_score(average="macro")` with `labels=None`);
//! - `gmean`: imbalanced-learn's `geometric_mean_score(average="multiclass", correction=0)`:
//!   the geometric mean of the recalls of the classes that occur in the labels or the
//!   predictions, where a predicted class with no samples has recall 0. One class with recall 0
//!   makes the G-mean 0; [`geometric_mean`] takes imbalanced-learn's `correction`.
//!
//! An empty input (no samples at all) gives `NaN` for every average, never a panic. Functions
//! with the plain names the trainer uses (`from_predictions`, `shot_groups`,
//! `expected_calibration_error`) panic only when the caller passes inconsistent shapes (a label
//! outside `0..num_classes`, slices of different lengths); their `try_` twins return
//! [`EvalError`] instead.
//!
//! `NaN` values serialise as JSON `null` (serde_json's behaviour) and deserialise back to `NaN`.

mod calibration;
mod confusion;
pub mod nan_null;
mod report;
mod shots;

/// Bins of the expected calibration error every lt tool reports (Guo et al. 2017 use 15).
pub const ECE_BINS: usize = 15;

pub use calibration::{Calibration, CalibrationBin, calibration, expected_calibration_error};
pub use confusion::ConfusionMatrix;
pub use report::{ClassificationReport, classification_report, geometric_mean};
pub use shots::{ShotGroup, ShotGroups, ShotSplit, shot_groups, try_shot_groups};

/// Inconsistent inputs to a metric: the message names the argument, the value and what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("num_classes is 0: pass the number of classes of the dataset (dataset.json class_names)")]
    NoClasses,
    #[error(
        "{what} has {actual} entries but {expected} were expected ({why}); pass slices from the same set of samples"
    )]
    LengthMismatch { what: &'static str, actual: usize, expected: usize, why: &'static str },
    #[error(
        "{what}[{position}] = {value} is not a class: the model has {num_classes} classes (0..{num_classes}); check that the labels and predictions come from the same dataset"
    )]
    ClassOutOfRange { what: &'static str, position: usize, value: usize, num_classes: usize },
    #[error("calibration needs at least one bin; pass bins >= 1 (15 is the usual choice)")]
    NoBins,
}

/// Mean of the values that are not NaN; NaN when there are none.
pub(crate) fn nan_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values.into_iter().filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}
