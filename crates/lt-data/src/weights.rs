//! Class weights for the loss (pure; no polars). lt-train uses these functions.

use lt_format::vocab::{Vocab, WeightsKind};

use crate::error::DataError;

/// How a class's weight follows from its number of training images `n_c`.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightScheme {
    /// Every class 1.
    None,
    /// `1 / n_c`.
    Inverse,
    /// `1 / sqrt(n_c)`.
    InverseSqrt,
    /// Cui et al. 2019: `(1 - beta) / (1 - beta^n_c)`, `beta` in [0, 1).
    EffectiveNumber { beta: f64 },
}

impl WeightScheme {
    /// The scheme of a name; `beta` is needed by `effective-number` (and refused by the others).
    pub fn from_kind(kind: WeightsKind, beta: Option<f64>) -> Result<Self, DataError> {
        match (kind, beta) {
            (WeightsKind::EffectiveNumber, Some(beta)) => Ok(WeightScheme::EffectiveNumber { beta }),
            (WeightsKind::EffectiveNumber, None) => {
                Err(DataError::Invalid("scheme effective-number needs --beta B with B in [0, 1)".into()))
            }
            (_, Some(_)) => Err(DataError::Invalid("--beta applies to --scheme effective-number only".into())),
            (WeightsKind::None, None) => Ok(WeightScheme::None),
            (WeightsKind::Inverse, None) => Ok(WeightScheme::Inverse),
            (WeightsKind::InverseSqrt, None) => Ok(WeightScheme::InverseSqrt),
        }
    }

    /// Parse a CLI name; `beta` is used by `effective-number` only.
    pub fn parse(name: &str, beta: Option<f64>) -> Result<Self, DataError> {
        let kind = WeightsKind::parse_name(name).map_err(|e| DataError::Invalid(e.to_string()))?;
        let beta = if kind == WeightsKind::EffectiveNumber { beta } else { None };
        Self::from_kind(kind, beta)
    }
}

/// Whether weights are rescaled after computing them: lt-format's [`WeightsNormalize`]
/// (`Classes`: sum to the number of classes C, Cui et al.; `None`: raw values).
pub use lt_format::vocab::WeightsNormalize as Normalize;

/// Check that `beta` is in [0, 1).
pub fn check_beta(beta: f64) -> Result<(), DataError> {
    if !(0.0..1.0).contains(&beta) {
        return Err(DataError::Invalid(format!(
            "beta {beta} is outside [0, 1); use e.g. 0.9999 (Cui et al.) or (N-1)/N"
        )));
    }
    Ok(())
}

/// Per-class weights from per-class training counts.
///
/// A class with 0 images gets weight 0 (it never occurs in the loss); with `Normalize::Classes`
/// the weights of the present classes are scaled so that all weights sum to C.
pub fn class_weights(counts: &[u64], scheme: &WeightScheme, normalize: Normalize) -> Result<Vec<f64>, DataError> {
    if counts.is_empty() {
        return Err(DataError::Invalid("class weights need at least one class count".into()));
    }
    if let WeightScheme::EffectiveNumber { beta } = scheme {
        check_beta(*beta)?;
    }
    let raw: Vec<f64> = counts
        .iter()
        .map(|&n| {
            if n == 0 {
                return 0.0;
            }
            let n = n as f64;
            match scheme {
                WeightScheme::None => 1.0,
                WeightScheme::Inverse => 1.0 / n,
                WeightScheme::InverseSqrt => 1.0 / n.sqrt(),
                // beta = 0 gives 1 for every class, like `None`.
                WeightScheme::EffectiveNumber { beta } => (1.0 - beta) / (1.0 - beta.powf(n)),
            }
        })
        .collect();
    if raw.iter().all(|&w| w == 0.0) {
        return Err(DataError::Invalid("every class count is 0; nothing to weight".into()));
    }
    Ok(match normalize {
        Normalize::None => raw,
        Normalize::Classes => {
            let sum: f64 = raw.iter().sum();
            let c = counts.len() as f64;
            raw.iter().map(|w| w * c / sum).collect()
        }
    })
}
