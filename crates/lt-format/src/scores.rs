//! Softmax and argmax, computed one way everywhere: the scores a run writes to
//! predictions.parquet and those `lt-train eval` computes from the same logits are equal.

/// Softmax of one row of logits in f64: the row's max is subtracted in f32 (as the logits
/// are), the exponentials and their sum are taken in f64. Non-finite logits give non-finite
/// probabilities rather than a silent guess.
///
/// ```
/// let p = lt_format::scores::softmax64(&[0.0, 0.0]);
/// assert_eq!(p, vec![0.5, 0.5]);
/// ```
pub fn softmax64(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&z| ((z - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// [`softmax64`] rounded to f32: the `scores` of predictions.parquet.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    softmax64(logits).into_iter().map(|p| p as f32).collect()
}

/// The index of the largest value; the first one on ties, 0 for an empty row. NaN never wins.
///
/// ```
/// assert_eq!(lt_format::scores::argmax(&[0.1, 0.7, 0.7]), 1);
/// ```
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}
