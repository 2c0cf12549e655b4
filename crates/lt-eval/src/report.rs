use serde::{Deserialize, Serialize};

use crate::{ConfusionMatrix, nan_mean, nan_null};

/// Per-class and averaged metrics of one confusion matrix. See the crate docs for the values
/// of classes without samples or never predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Number of samples.
    pub samples: u64,
    /// Correct / all; NaN without samples.
    #[serde(deserialize_with = "nan_null::f64")]
    pub accuracy: f64,
    /// Mean per-class accuracy over the classes with samples.
    #[serde(deserialize_with = "nan_null::f64")]
    pub balanced_accuracy: f64,
    /// Recall per class, indexed by label; NaN for a class without samples.
    #[serde(deserialize_with = "nan_null::vec")]
    pub per_class_accuracy: Vec<f64>,
    /// Precision per class; 0 for a class never predicted.
    #[serde(deserialize_with = "nan_null::vec")]
    pub precision: Vec<f64>,
    /// F1 per class = 2·tp / (2·tp + fp + fn); 0 for a class neither present nor predicted.
    #[serde(deserialize_with = "nan_null::vec")]
    pub f1: Vec<f64>,
    /// Samples per true label.
    pub support: Vec<u64>,
    /// Samples per predicted class.
    pub predicted: Vec<u64>,
    /// Mean precision over the classes present in labels or predictions.
    #[serde(deserialize_with = "nan_null::f64")]
    pub macro_precision: f64,
    /// Mean F1 over the classes present in labels or predictions.
    #[serde(deserialize_with = "nan_null::f64")]
    pub macro_f1: f64,
    /// Geometric mean of recalls as imbalanced-learn defines it (correction 0).
    #[serde(deserialize_with = "nan_null::f64")]
    pub gmean: f64,
}

fn ratio_or(num: u64, den: u64, otherwise: f64) -> f64 {
    if den == 0 { otherwise } else { num as f64 / den as f64 }
}

/// Every metric of [`ClassificationReport`] from one confusion matrix.
pub fn classification_report(cm: &ConfusionMatrix) -> ClassificationReport {
    let support = cm.row_totals();
    let predicted = cm.column_totals();
    let tp = cm.diagonal();
    let samples = cm.total();
    let per_class_accuracy: Vec<f64> = tp.iter().zip(&support).map(|(&t, &s)| ratio_or(t, s, f64::NAN)).collect();
    let precision: Vec<f64> = tp.iter().zip(&predicted).map(|(&t, &p)| ratio_or(t, p, 0.0)).collect();
    let f1: Vec<f64> = (0..cm.num_classes)
        .map(|c| {
            // 2tp + fp + fn = support + predicted.
            ratio_or(2 * tp[c], support[c] + predicted[c], 0.0)
        })
        .collect();
    let present: Vec<bool> = support.iter().zip(&predicted).map(|(&s, &p)| s > 0 || p > 0).collect();
    let over_present = |values: &[f64]| nan_mean(values.iter().zip(&present).filter(|(_, p)| **p).map(|(v, _)| *v));
    ClassificationReport {
        samples,
        accuracy: ratio_or(tp.iter().sum(), samples, f64::NAN),
        balanced_accuracy: nan_mean(per_class_accuracy.iter().copied()),
        macro_precision: over_present(&precision),
        macro_f1: over_present(&f1),
        gmean: geometric_mean(cm, 0.0),
        per_class_accuracy,
        precision,
        f1,
        support,
        predicted,
    }
}

/// imbalanced-learn's `geometric_mean_score(y_true, y_pred, average="multiclass",
/// correction=correction)`: over the classes present in labels or predictions, the geometric
/// mean of recall, where a zero recall (including a predicted class without samples) is
/// replaced by `correction`. NaN without samples.
pub fn geometric_mean(cm: &ConfusionMatrix, correction: f64) -> f64 {
    let support = cm.row_totals();
    let predicted = cm.column_totals();
    let mut log_sum = 0.0;
    let mut n = 0usize;
    for c in 0..cm.num_classes {
        if support[c] == 0 && predicted[c] == 0 {
            continue;
        }
        let recall = ratio_or(cm.get(c, c), support[c], 0.0);
        let recall = if recall == 0.0 { correction } else { recall };
        if recall == 0.0 {
            return 0.0;
        }
        log_sum += recall.ln();
        n += 1;
    }
    if n == 0 { f64::NAN } else { (log_sum / n as f64).exp() }
}
