use serde::{Deserialize, Serialize};

use crate::{EvalError, nan_null};

/// One confidence bin `(lower, upper]` (the first bin also takes confidence 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean top-1 confidence in the bin; NaN for an empty bin.
    #[serde(deserialize_with = "nan_null::f64")]
    pub mean_confidence: f64,
    /// Fraction of the bin's samples whose top-1 prediction is right; NaN for an empty bin.
    #[serde(deserialize_with = "nan_null::f64")]
    pub accuracy: f64,
}

/// Reliability diagram and calibration errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub bins: Vec<CalibrationBin>,
    /// Expected calibration error: sum over bins of (count / N) · |accuracy − confidence|.
    #[serde(deserialize_with = "nan_null::f64")]
    pub ece: f64,
    /// Maximum calibration error: max over non-empty bins of |accuracy − confidence|.
    #[serde(deserialize_with = "nan_null::f64")]
    pub mce: f64,
}

/// Expected calibration error (Guo et al. 2017) of top-1 predictions over `bins` equal-width
/// confidence bins. `scores` is N × C row-major (softmax per sample); the prediction is the
/// arg-max (first on ties). NaN for N = 0.
///
/// # Panics
/// On inconsistent shapes (see [`calibration`], which returns the error instead).
pub fn expected_calibration_error(scores: &[f32], labels: &[usize], num_classes: usize, bins: usize) -> f64 {
    match calibration(scores, labels, num_classes, bins) {
        Ok(c) => c.ece,
        Err(e) => panic!("expected_calibration_error: {e}"),
    }
}

/// The reliability diagram behind [`expected_calibration_error`].
pub fn calibration(
    scores: &[f32],
    labels: &[usize],
    num_classes: usize,
    bins: usize,
) -> Result<Calibration, EvalError> {
    if num_classes == 0 {
        return Err(EvalError::NoClasses);
    }
    if bins == 0 {
        return Err(EvalError::NoBins);
    }
    if scores.len() != labels.len() * num_classes {
        return Err(EvalError::LengthMismatch {
            what: "scores",
            actual: scores.len(),
            expected: labels.len() * num_classes,
            why: "labels.len() x num_classes softmax scores",
        });
    }
    let mut count = vec![0u64; bins];
    let mut conf_sum = vec![0f64; bins];
    let mut correct = vec![0u64; bins];
    for (i, (row, &label)) in scores.chunks_exact(num_classes).zip(labels).enumerate() {
        if label >= num_classes {
            return Err(EvalError::ClassOutOfRange { what: "labels", position: i, value: label, num_classes });
        }
        let (mut best, mut conf) = (0usize, row[0]);
        for (k, &s) in row.iter().enumerate().skip(1) {
            if s > conf {
                best = k;
                conf = s;
            }
        }
        let conf = f64::from(conf);
        // Bin (lower, upper]: ceil(conf·bins) − 1, clamped (NaN casts to 0).
        let b = ((conf * bins as f64).ceil() as usize).saturating_sub(1).min(bins - 1);
        count[b] += 1;
        conf_sum[b] += conf;
        correct[b] += u64::from(best == label);
    }
    let n = labels.len();
    let mut ece = 0.0;
    let mut mce = 0.0f64;
    let bins_out = (0..bins)
        .map(|b| {
            let (mean_confidence, accuracy) = if count[b] == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (conf_sum[b] / count[b] as f64, correct[b] as f64 / count[b] as f64)
            };
            if count[b] > 0 {
                let gap = (accuracy - mean_confidence).abs();
                ece += count[b] as f64 / n as f64 * gap;
                mce = if mce.is_nan() || gap.is_nan() { f64::NAN } else { mce.max(gap) };
            }
            CalibrationBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                count: count[b],
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    if n == 0 {
        ece = f64::NAN;
        mce = f64::NAN;
    }
    Ok(Calibration { bins: bins_out, ece, mce })
}
