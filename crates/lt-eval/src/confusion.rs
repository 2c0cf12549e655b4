use serde::{Deserialize, Serialize};

use crate::EvalError;

/// Counts of (true label, prediction) pairs: `counts[t * num_classes + p]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub num_classes: usize,
    /// Row-major, row = true label, column = prediction.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An all-zero matrix.
    pub fn zeros(num_classes: usize) -> Self {
        Self { num_classes, counts: vec![0; num_classes * num_classes] }
    }

    /// Counts the pairs `(labels[i], predictions[i])`.
    ///
    /// # Panics
    /// When the slices differ in length or a value is `>= num_classes` (a caller bug: the
    /// labels and predictions do not belong to this model). [`Self::try_from_predictions`]
    /// returns the error instead.
    pub fn from_predictions(labels: &[usize], predictions: &[usize], num_classes: usize) -> Self {
        match Self::try_from_predictions(labels, predictions, num_classes) {
            Ok(cm) => cm,
            Err(e) => panic!("ConfusionMatrix::from_predictions: {e}"),
        }
    }

    /// Like [`Self::from_predictions`], with inconsistent inputs reported as [`EvalError`].
    pub fn try_from_predictions(
        labels: &[usize],
        predictions: &[usize],
        num_classes: usize,
    ) -> Result<Self, EvalError> {
        if num_classes == 0 {
            return Err(EvalError::NoClasses);
        }
        if labels.len() != predictions.len() {
            return Err(EvalError::LengthMismatch {
                what: "predictions",
                actual: predictions.len(),
                expected: labels.len(),
                why: "one prediction per label",
            });
        }
        let mut cm = Self::zeros(num_classes);
        for (i, (&t, &p)) in labels.iter().zip(predictions).enumerate() {
            if t >= num_classes {
                return Err(EvalError::ClassOutOfRange { what: "labels", position: i, value: t, num_classes });
            }
            if p >= num_classes {
                return Err(EvalError::ClassOutOfRange { what: "predictions", position: i, value: p, num_classes });
            }
            cm.counts[t * num_classes + p] += 1;
        }
        Ok(cm)
    }

    /// A matrix from stored counts (row-major, row = true label).
    pub fn from_counts(num_classes: usize, counts: Vec<u64>) -> Result<Self, EvalError> {
        if num_classes == 0 {
            return Err(EvalError::NoClasses);
        }
        if counts.len() != num_classes * num_classes {
            return Err(EvalError::LengthMismatch {
                what: "counts",
                actual: counts.len(),
                expected: num_classes * num_classes,
                why: "num_classes x num_classes cells",
            });
        }
        Ok(Self { num_classes, counts })
    }

    /// Samples whose true label is `label` and whose prediction is `prediction`.
    pub fn get(&self, label: usize, prediction: usize) -> u64 {
        self.counts[label * self.num_classes + prediction]
    }

    /// The row of true label `label`.
    pub fn row(&self, label: usize) -> &[u64] {
        &self.counts[label * self.num_classes..(label + 1) * self.num_classes]
    }

    /// Samples per true label (the support).
    pub fn row_totals(&self) -> Vec<u64> {
        (0..self.num_classes).map(|t| self.row(t).iter().sum()).collect()
    }

    /// Samples per predicted class.
    pub fn column_totals(&self) -> Vec<u64> {
        let mut totals = vec![0; self.num_classes];
        for t in 0..self.num_classes {
            for (total, &c) in totals.iter_mut().zip(self.row(t)) {
                *total += c;
            }
        }
        totals
    }

    /// Correct predictions per class (the diagonal).
    pub fn diagonal(&self) -> Vec<u64> {
        (0..self.num_classes).map(|c| self.get(c, c)).collect()
    }

    /// All samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each row divided by that row's total (the number of samples of that true label), so
    /// row `t` is the distribution of predictions for class `t` and the diagonal is the
    /// per-class accuracy. A class without samples gives a row of NaN.
    pub fn row_normalized(&self) -> Vec<f64> {
        let n = self.num_classes;
        let mut out = Vec::with_capacity(n * n);
        for t in 0..n {
            let row = self.row(t);
            let total: u64 = row.iter().sum();
            if total == 0 {
                out.extend(std::iter::repeat_n(f64::NAN, n));
            } else {
                out.extend(row.iter().map(|&c| c as f64 / total as f64));
            }
        }
        out
    }
}
