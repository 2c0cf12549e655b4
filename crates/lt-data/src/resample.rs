//! Resampling strategies: the order in which training visits the subset, per epoch (pure).

use lt_format::vocab::{Resampler, Vocab};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::DataError;
use crate::rng;

/// A resampling strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Every subset image once per epoch, shuffled.
    Instance,
    /// Every class topped up to the largest class by sampling it with replacement
    /// (imbalanced-learn's RandomOverSampler), then shuffled.
    RandomOver,
    /// Every class cut to the smallest class without replacement (RandomUnderSampler).
    RandomUnder,
    /// Each draw picks a class uniformly, then one of its images; epoch length = subset size.
    ClassBalanced,
    /// Class probability proportional to sqrt(n_c); epoch length = subset size.
    Sqrt,
    /// Epoch t of E (t = 1..E): p = (t/E) class-balanced + (1 - t/E) instance-balanced.
    Progressive,
    /// Per-image sampling weight (1 - beta) / (1 - beta^n_c); epoch length = subset size.
    EffectiveNumber { beta: f64 },
}

impl Strategy {
    /// The word this strategy is: lt-format's [`Resampler`] vocabulary.
    pub fn kind(&self) -> Resampler {
        match self {
            Strategy::Instance => Resampler::Instance,
            Strategy::RandomOver => Resampler::RandomOver,
            Strategy::RandomUnder => Resampler::RandomUnder,
            Strategy::ClassBalanced => Resampler::ClassBalanced,
            Strategy::Sqrt => Resampler::Sqrt,
            Strategy::Progressive => Resampler::Progressive,
            Strategy::EffectiveNumber { .. } => Resampler::EffectiveNumber,
        }
    }

    /// The name used on the command line and in file names (`manifest-<name>.parquet`).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Parse a name; `beta` is needed by `effective-number`.
    pub fn parse(name: &str, beta: Option<f64>) -> Result<Self, DataError> {
        let kind = Resampler::parse_name(name.trim()).map_err(|e| DataError::Invalid(e.to_string()))?;
        Ok(match kind {
            Resampler::Instance => Strategy::Instance,
            Resampler::RandomOver => Strategy::RandomOver,
            Resampler::RandomUnder => Strategy::RandomUnder,
            Resampler::ClassBalanced => Strategy::ClassBalanced,
            Resampler::Sqrt => Strategy::Sqrt,
            Resampler::Progressive => Strategy::Progressive,
            Resampler::EffectiveNumber => {
                let beta = beta.ok_or_else(|| {
                    DataError::Invalid("resampler effective-number needs --beta B with B in [0, 1)".into())
                })?;
                crate::weights::check_beta(beta)?;
                Strategy::EffectiveNumber { beta }
            }
        })
    }
}

impl Strategy {
    /// Parse a comma-separated list (`--resample a,b`). An empty list or an empty name is an
    /// error listing the valid names: it would otherwise write no manifest without a word.
    pub fn parse_list(list: &str, beta: Option<f64>) -> Result<Vec<Self>, DataError> {
        let names = Resampler::names().join(", ");
        if list.trim().is_empty() {
            return Err(DataError::Invalid(format!(
                "--resample is empty; give one or more of {names}, separated by commas"
            )));
        }
        list.split(',')
            .enumerate()
            .map(|(i, name)| {
                if name.trim().is_empty() {
                    return Err(DataError::Invalid(format!(
                        "--resample `{list}`: name {} is empty; use one or more of {names}, separated by commas",
                        i + 1
                    )));
                }
                Strategy::parse(name, beta)
            })
            .collect()
    }
}

/// Most rows of one manifest (epochs x epoch length), checked before it is built: 2^28 rows
/// take 3 GiB in memory (CIFAR-10-LT with 200 epochs has 2.5 million).
pub const MAX_MANIFEST_ROWS: u64 = 1 << 28;

/// A manifest: for each row, the epoch (0-based), the position within the epoch (0-based) and
/// the train-split index visited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub epoch: Vec<u32>,
    pub position: Vec<u32>,
    pub index: Vec<u32>,
}

impl Manifest {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Per-class sampling probabilities of a draw-based strategy at epoch `epoch` of `epochs`
/// (`None` for the permutation-based ones: instance, random-over, random-under).
/// Classes without images get probability 0.
pub fn class_probabilities(strategy: &Strategy, counts: &[u64], epoch: u32, epochs: u32) -> Option<Vec<f64>> {
    let present = counts.iter().filter(|&&n| n > 0).count() as f64;
    let total: u64 = counts.iter().sum();
    let normalise = |w: Vec<f64>| {
        let s: f64 = w.iter().sum();
        w.into_iter().map(|x| x / s).collect::<Vec<_>>()
    };
    let balanced = counts.iter().map(|&n| if n > 0 { 1.0 / present } else { 0.0 }).collect::<Vec<_>>();
    match strategy {
        Strategy::Instance | Strategy::RandomOver | Strategy::RandomUnder => None,
        Strategy::ClassBalanced => Some(balanced),
        Strategy::Sqrt => Some(normalise(counts.iter().map(|&n| (n as f64).sqrt()).collect())),
        Strategy::Progressive => {
            let t = f64::from(epoch + 1) / f64::from(epochs.max(1));
            Some(counts.iter().zip(&balanced).map(|(&n, &b)| t * b + (1.0 - t) * n as f64 / total as f64).collect())
        }
        Strategy::EffectiveNumber { beta } => Some(normalise(
            counts
                .iter()
                .map(|&n| if n == 0 { 0.0 } else { n as f64 * (1.0 - beta) / (1.0 - beta.powf(n as f64)) })
                .collect(),
        )),
    }
}

/// Build the manifest of `epochs` epochs over a subset given by its train-split `indices` and
/// their `labels`, for `num_classes` classes. Seeded per strategy and epoch.
pub fn manifest(
    strategy: &Strategy,
    indices: &[u32],
    labels: &[u16],
    num_classes: usize,
    epochs: u32,
    seed: u64,
) -> Result<Manifest, DataError> {
    if indices.len() != labels.len() {
        return Err(DataError::Invalid(format!(
            "{} subset indices but {} labels; they must pair up",
            indices.len(),
            labels.len()
        )));
    }
    if indices.is_empty() {
        return Err(DataError::Invalid("the subset is empty; nothing to resample".into()));
    }
    if epochs == 0 {
        return Err(DataError::Invalid("--epochs must be at least 1".into()));
    }
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); num_classes];
    for (&i, &l) in indices.iter().zip(labels) {
        let l = l as usize;
        if l >= num_classes {
            return Err(DataError::Invalid(format!("label {l} of index {i} is outside 0..{num_classes}")));
        }
        by_class[l].push(i);
    }
    let counts: Vec<u64> = by_class.iter().map(|v| v.len() as u64).collect();
    let present: Vec<usize> = (0..num_classes).filter(|&c| counts[c] > 0).collect();
    let epoch_len = match strategy {
        Strategy::RandomOver => counts.iter().max().copied().unwrap_or(0) * present.len() as u64,
        Strategy::RandomUnder => present.iter().map(|&c| counts[c]).min().unwrap_or(0) * present.len() as u64,
        _ => indices.len() as u64,
    };
    let rows = epoch_len.saturating_mul(u64::from(epochs));
    if rows > MAX_MANIFEST_ROWS || epoch_len > u64::from(u32::MAX) {
        return Err(DataError::Invalid(format!(
            "manifest {}: {epochs} epochs x {epoch_len} rows = {rows} rows, over the limit of {MAX_MANIFEST_ROWS} \
             (12 bytes each in memory); lower --epochs",
            strategy.name()
        )));
    }
    let mut out = Manifest::default();
    for epoch in 0..epochs {
        let mut rng = rng::stream(seed, strategy.name(), u64::from(epoch));
        let order = match strategy {
            Strategy::Instance => {
                let mut v = indices.to_vec();
                v.shuffle(&mut rng);
                v
            }
            Strategy::RandomOver => {
                let top = present.iter().map(|&c| by_class[c].len()).max().unwrap_or(0);
                let mut v = Vec::with_capacity(top * present.len());
                for &c in &present {
                    let members = &by_class[c];
                    v.extend_from_slice(members);
                    for _ in members.len()..top {
                        v.push(members[rng.random_range(0..members.len())]);
                    }
                }
                v.shuffle(&mut rng);
                v
            }
            Strategy::RandomUnder => {
                let low = present.iter().map(|&c| by_class[c].len()).min().unwrap_or(0);
                let mut v = Vec::with_capacity(low * present.len());
                for &c in &present {
                    let mut members = by_class[c].clone();
                    let (chosen, _) = members.partial_shuffle(&mut rng, low);
                    v.extend_from_slice(chosen);
                }
                v.shuffle(&mut rng);
                v
            }
            _ => {
                let probs = class_probabilities(strategy, &counts, epoch, epochs).expect("draw-based strategy");
                draw(&mut rng, &probs, &by_class, indices.len())
            }
        };
        out.epoch.extend(std::iter::repeat_n(epoch, order.len()));
        out.position.extend(0..order.len() as u32);
        out.index.extend_from_slice(&order);
    }
    Ok(out)
}

/// `len` draws: a class by `probs` (inverse CDF on a 53-bit uniform), then one of its images
/// uniformly.
fn draw(rng: &mut ChaCha8Rng, probs: &[f64], by_class: &[Vec<u32>], len: usize) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(probs.len());
    let mut acc = 0.0;
    for &p in probs {
        acc += p;
        cdf.push(acc);
    }
    let last_present = (0..probs.len()).rev().find(|&c| probs[c] > 0.0).expect("a class with probability > 0");
    (0..len)
        .map(|_| {
            let u: f64 = rng.random::<f64>() * acc;
            let mut c = cdf.partition_point(|&x| x <= u);
            if c > last_present || probs[c] == 0.0 {
                // Floating-point edge: u landed at the very top, or on a zero-width class.
                c = (0..=c.min(last_present)).rev().find(|&k| probs[k] > 0.0).unwrap_or(last_present);
            }
            let members = &by_class[c];
            members[rng.random_range(0..members.len())]
        })
        .collect()
}
