//! What the runs of a report have in common and where they differ.

use std::collections::{BTreeMap, BTreeSet};

use lt_eval::{ShotGroups, ShotSplit};
use serde::Serialize;

use crate::input::{DatasetCounts, Run};
use crate::{ReportError, ShotChoice};

/// Settings (flattened `config` keys) whose values are not the same in every run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Dotted paths into `config`, sorted.
    pub keys: Vec<String>,
    /// Per run, the value of each differing key ("–" where the run lacks it).
    pub values: Vec<BTreeMap<String, String>>,
}

/// Keys that name where a run was written rather than how it was trained.
const OUTPUT_KEYS: [&str; 8] = ["out", "out_dir", "output", "output_dir", "run_dir", "label", "resume", "log"];

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        serde_json::Value::Null if prefix.is_empty() => {}
        serde_json::Value::Number(n) => {
            out.insert(prefix.to_string(), number_text(n));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// A number as written: an f32 option widened to f64 (0.05000000074505806) reads as the
/// f32 it was (0.05).
fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(v) if !n.is_i64() && !n.is_u64() && f64::from(v as f32) == v => format!("{}", v as f32),
        _ => n.to_string(),
    }
}

/// The config keys whose values differ between runs, leaving out where each run was written
/// (keys named like an output path, or whose value is the run's own directory).
pub fn differing_settings(runs: &[Run]) -> Settings {
    let flat: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            flatten("", &r.config, &mut m);
            m
        })
        .collect();
    let all_keys: BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    let mut keys = Vec::new();
    for key in all_keys {
        let last = key.rsplit('.').next().unwrap_or(key);
        if OUTPUT_KEYS.contains(&last) {
            continue;
        }
        let values: Vec<Option<&String>> = flat.iter().map(|m| m.get(key)).collect();
        if values.iter().all(|v| *v == values[0]) {
            continue;
        }
        let is_own_dir = runs.iter().zip(&values).all(|(r, v)| {
            v.is_some_and(|v| {
                let p = std::path::Path::new(v);
                p == r.dir || p.file_name().is_some_and(|n| Some(n) == r.dir.file_name())
            })
        });
        if !is_own_dir {
            keys.push(key.clone());
        }
    }
    let values = flat
        .iter()
        .map(|m| keys.iter().map(|k| (k.clone(), m.get(k).cloned().unwrap_or_else(|| "–".to_string()))).collect())
        .collect();
    Settings { keys, values }
}

/// One label per run, unique: the run's own `label`, else its differing settings
/// (`loss=cb, sampler=none`), else the directory name.
pub fn run_labels(runs: &[Run], settings: &Settings) -> Vec<String> {
    let mut labels: Vec<String> = runs
        .iter()
        .zip(&settings.values)
        .map(|(run, values)| {
            if let Some(l) = &run.label {
                return l.clone();
            }
            if values.is_empty() {
                return run.dir_name();
            }
            values
                .iter()
                .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in &labels {
        *seen.entry(l.clone()).or_default() += 1;
    }
    for (label, run) in labels.iter_mut().zip(runs) {
        if seen[label.as_str()] > 1 {
            *label = format!("{label} ({})", run.dir_name());
        }
    }
    labels
}

/// Everything the figures and tables are drawn from.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub runs: Vec<Run>,
    pub labels: Vec<String>,
    pub settings: Settings,
    pub class_names: Vec<String>,
    /// Labels sorted head to tail: by training images, most first (ties: lower label first).
    pub order: Vec<usize>,
    pub split: ShotSplit,
    /// Per run.
    pub shots: Vec<ShotGroups>,
    pub dataset: Option<DatasetCounts>,
    pub log_counts: bool,
}

impl ReportData {
    pub fn new(
        runs: Vec<Run>,
        dataset: Option<DatasetCounts>,
        shots: ShotChoice,
        log_counts: bool,
    ) -> Result<Self, ReportError> {
        let first = runs.first().ok_or(ReportError::NoRuns)?;
        for r in &runs[1..] {
            if r.class_names.len() != first.class_names.len() {
                return Err(ReportError::ClassesDiffer {
                    a: first.dir.clone(),
                    a_classes: first.class_names.len(),
                    b: r.dir.clone(),
                    b_classes: r.class_names.len(),
                });
            }
        }
        if let Some(d) = &dataset
            && d.class_names.len() != first.class_names.len()
        {
            return Err(ReportError::invalid(
                d.dir.join("dataset.json"),
                format!(
                    "the dataset has {} classes but run {} has {}; pass the dataset the runs were trained on (--data)",
                    d.class_names.len(),
                    first.dir.display(),
                    first.class_names.len()
                ),
            ));
        }
        let counts = &first.train_counts;
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let split = shots.resolve(counts);
        let shots =
            runs.iter().map(|r| lt_eval::shot_groups(&r.train_counts, &r.report.per_class_accuracy, split)).collect();
        let settings = differing_settings(&runs);
        let labels = run_labels(&runs, &settings);
        Ok(Self {
            class_names: first.class_names.clone(),
            runs,
            labels,
            settings,
            order,
            split,
            shots,
            dataset,
            log_counts,
        })
    }
}

impl ShotChoice {
    /// The split to use for these training counts: `Auto` takes the many/medium/few thresholds
    /// when each of the three groups has a class, else head/mid/tail thirds.
    pub fn resolve(self, train_counts: &[u64]) -> ShotSplit {
        match self {
            ShotChoice::Thresholds { many_above, few_below } => ShotSplit::Thresholds { many_above, few_below },
            ShotChoice::Thirds => ShotSplit::Thirds,
            ShotChoice::Auto => {
                let t = ShotSplit::default();
                let g = lt_eval::shot_groups(train_counts, &vec![0.0; train_counts.len()], t);
                if g.groups.iter().all(|g| !g.classes.is_empty()) { t } else { ShotSplit::Thirds }
            }
        }
    }
}
