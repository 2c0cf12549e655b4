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
    /// Per run, the value of each differing key ("–" where the run lacks it, leaves it unset
    /// (null) or where it has no effect, as β without effective-number weights).
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

/// Whether the setting `key` acts on training, given the run's other settings (`flat`): a
/// setting read only together with another is left out where that one turns it off (β
/// without effective-number weights or resampling, focal γ without the focal loss, ...). The
/// names are lt-train's `TrainConfig` fields; a config without the governing setting (an
/// older or a foreign run.json) keeps the setting.
fn has_effect(key: &str, flat: &BTreeMap<String, String>) -> bool {
    let (prefix, last) = match key.rsplit_once('.') {
        Some((p, l)) => (format!("{p}."), l),
        None => (String::new(), key),
    };
    let get = |name: &str| flat.get(&format!("{prefix}{name}")).map(String::as_str);
    // Acts when `name` is absent or one of `values`.
    let when = |name: &str, values: &[&str]| get(name).is_none_or(|v| values.contains(&v));
    match last {
        "beta" => match (get("weights"), get("resample")) {
            (None, None) => true,
            (w, r) => w == Some("effective-number") || r == Some("effective-number"),
        },
        "focal_gamma" => when("loss", &["focal"]),
        "ldam_max_margin" | "ldam_scale" => when("loss", &["ldam"]),
        "tau" => when("loss", &["balanced-softmax", "logit-adjusted", "vs"]),
        "vs_gamma" => when("loss", &["vs"]),
        "label_smoothing" => when("loss", &["ce"]),
        // DRW switches the class weights on at that epoch; without weights there is nothing
        // to switch, and nothing to normalise.
        "drw" | "weights_normalize" => get("weights").is_none_or(|w| w != "none"),
        _ => true,
    }
}

/// The config keys whose values differ between runs, leaving out where each run was written
/// (keys named like an output path, or whose value is the run's own directory). Per run, a
/// setting that has no effect there (β without effective-number weights or resampling) or is
/// unset (null) counts as absent; a key is kept when these values differ.
pub fn differing_settings(runs: &[Run]) -> Settings {
    let flat: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            flatten("", &r.config, &mut m);
            m
        })
        .collect();
    // An unset option (null: no DRW epoch, no resampler) counts as absent.
    let acting: Vec<BTreeMap<String, String>> = flat
        .iter()
        .map(|m| {
            m.iter().filter(|(k, v)| *v != "null" && has_effect(k, m)).map(|(k, v)| (k.clone(), v.clone())).collect()
        })
        .collect();
    let all_keys: BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    let mut keys = Vec::new();
    for key in all_keys {
        let last = key.rsplit('.').next().unwrap_or(key);
        if OUTPUT_KEYS.contains(&last) {
            continue;
        }
        let values: Vec<Option<&String>> = acting.iter().map(|m| m.get(key)).collect();
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
    let values = acting
        .iter()
        .map(|m| keys.iter().map(|k| (k.clone(), m.get(k).cloned().unwrap_or_else(|| "–".to_string()))).collect())
        .collect();
    Settings { keys, values }
}

/// One label per run, unique: `overrides[i]` (`--label`) for run i, else the run's own
/// `label` (run.json; `lt run` sets it to the experiment's name), else the directory name.
/// Runs that would share a label get their directory name (or path) after it.
pub fn run_labels(runs: &[Run], overrides: &[String]) -> Vec<String> {
    let given: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            overrides
                .get(i)
                .filter(|l| !l.trim().is_empty())
                .or(run.label.as_ref())
                .cloned()
                .unwrap_or_else(|| run.dir_name())
        })
        .collect();
    let count = |labels: &[String], l: &String| labels.iter().filter(|m| *m == l).count();
    let with_name: Vec<String> = given
        .iter()
        .zip(runs)
        .map(|(l, run)| {
            let name = run.dir_name();
            if count(&given, l) > 1 && *l != name { format!("{l} ({name})") } else { l.clone() }
        })
        .collect();
    with_name
        .iter()
        .zip(given.iter().zip(runs))
        .map(|(l, (g, run))| if count(&with_name, l) > 1 { format!("{g} ({})", run.dir.display()) } else { l.clone() })
        .collect()
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
    /// The shot splits shown, in order (head/mid/tail thirds, then many/medium/few).
    pub splits: Vec<ShotSplit>,
    /// Per run, its groups under each of `splits`.
    pub shots: Vec<Vec<ShotGroups>>,
    pub dataset: Option<DatasetCounts>,
    pub log_counts: bool,
}

impl ReportData {
    /// `labels[i]` (`--label`) names run i; runs past the end of `labels` are named by
    /// [`run_labels`]' rules.
    pub fn new(
        runs: Vec<Run>,
        dataset: Option<DatasetCounts>,
        shots: ShotChoice,
        log_counts: bool,
        labels: &[String],
    ) -> Result<Self, ReportError> {
        let first = runs.first().ok_or(ReportError::NoRuns)?;
        if labels.len() > runs.len() {
            return Err(ReportError::TooManyLabels { labels: labels.len(), runs: runs.len() });
        }
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
        let splits = shots.splits();
        let shots = runs
            .iter()
            .map(|r| {
                splits.iter().map(|&s| lt_eval::shot_groups(&r.train_counts, &r.report.per_class_accuracy, s)).collect()
            })
            .collect();
        let settings = differing_settings(&runs);
        let labels = run_labels(&runs, labels);
        Ok(Self {
            class_names: first.class_names.clone(),
            runs,
            labels,
            settings,
            order,
            splits,
            shots,
            dataset,
            log_counts,
        })
    }

    /// Every group name, split after split (`head`, `mid`, `tail`, `many`, `medium`, `few`).
    pub fn group_names(&self) -> Vec<&'static str> {
        self.splits.iter().flat_map(|s| s.names()).collect()
    }
}

impl ShotChoice {
    /// The splits this choice shows, in order.
    pub fn splits(self) -> Vec<ShotSplit> {
        match self {
            ShotChoice::Both { many_above, few_below } => {
                vec![ShotSplit::Thirds, ShotSplit::Thresholds { many_above, few_below }]
            }
            ShotChoice::Thresholds { many_above, few_below } => vec![ShotSplit::Thresholds { many_above, few_below }],
            ShotChoice::Thirds => vec![ShotSplit::Thirds],
        }
    }
}
