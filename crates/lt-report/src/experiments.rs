//! Runs that are the seeds of one experiment, and the spread of their metrics.
//!
//! Runs are grouped only by a name someone gave them (`--label`, or run.json's `label`, which
//! `lt run` sets to the experiment's name) and only when their settings agree except for the
//! seed: a run named by its directory, or two runs that share a name but not their settings,
//! stay experiments of their own, so different experiments are never averaged together.

use std::collections::BTreeMap;

use lt_eval::{ClassificationReport, ConfusionMatrix};
use serde::Serialize;

use crate::input::Run;

/// Mean and spread of one metric over the seeds of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// NaN (null in JSON) when any seed's value is NaN (a shot group without classes).
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); `None` for one seed.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// Seeds the numbers are over.
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let n = values.len();
        if n == 0 || values.iter().any(|v| v.is_nan()) {
            return Spread { mean: f64::NAN, std: None, min: f64::NAN, max: f64::NAN, n };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Spread { mean, std, min, max, n }
    }

    /// mean − std and mean + std (the mean alone for one seed).
    pub fn std_range(&self) -> (f64, f64) {
        let s = self.std.unwrap_or(0.0);
        (self.mean - s, self.mean + s)
    }
}

/// The runs of one experiment, their predictions pooled for the figures that draw classes.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub label: String,
    /// Indices into the report's runs, in the order they were given.
    pub runs: Vec<usize>,
    /// Every seed's confusion counts summed (the test images are the same for every seed, so
    /// a class's pooled recall is the mean of its recalls).
    pub confusion: ConfusionMatrix,
    pub report: ClassificationReport,
}

impl Experiment {
    pub(crate) fn new(label: String, runs: Vec<usize>, all: &[Run]) -> Experiment {
        let c = all[runs[0]].confusion.num_classes;
        let mut counts = vec![0u64; c * c];
        for &i in &runs {
            for (sum, n) in counts.iter_mut().zip(&all[i].confusion.counts) {
                *sum += n;
            }
        }
        let confusion = ConfusionMatrix { num_classes: c, counts };
        let report =
            if runs.len() == 1 { all[runs[0]].report.clone() } else { lt_eval::classification_report(&confusion) };
        Experiment { label, runs, confusion, report }
    }

    /// The spread over this experiment's runs of `value`.
    pub fn spread(&self, runs: &[Run], value: impl Fn(usize, &Run) -> f64) -> Spread {
        Spread::of(&self.runs.iter().map(|&i| value(i, &runs[i])).collect::<Vec<_>>())
    }
}

/// Whether a setting (a dotted `config` key) may differ between the seeds of one experiment.
pub(crate) fn varies_by_seed(key: &str) -> bool {
    key.rsplit('.').next() == Some("seed")
}

/// Groups runs into experiments: runs with the same given name (`names[i]`: `--label` or
/// run.json `label`, `None` when the run has neither) and the same `settings` (each run's
/// acting settings without where it was written and its seed) form one, in the order of their
/// first run. Runs without a given name are experiments of their own.
pub(crate) fn group(names: &[Option<&str>], settings: &[BTreeMap<String, String>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let same = |g: &&mut Vec<usize>| {
            let first = g[0];
            name.is_some() && names[first] == *name && settings[first] == settings[i]
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}
