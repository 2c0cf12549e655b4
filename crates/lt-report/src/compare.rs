//! What the runs of a report have in common and where they differ.

use std::collections::{BTreeMap, BTreeSet};

use lt_eval::{ShotGroups, ShotSplit};
use serde::Serialize;

use crate::experiments::{self, Experiment, varies_by_seed};
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
        "randaugment_n" | "randaugment_m" => when("augment", &["randaugment"]),
        "label_smoothing" => when("loss", &["ce"]),
        // DRW switches the class weights on at that epoch; without weights there is nothing
        // to switch, and nothing to normalise.
        "drw" | "weights_normalize" => get("weights").is_none_or(|w| w != "none"),
        _ => true,
    }
}

/// A run's settings that act on training: `config` flattened to dotted keys, leaving out
/// unset options (null) and settings with no effect there (β without effective-number
/// weights or resampling).
fn acting_settings(run: &Run) -> BTreeMap<String, String> {
    let mut flat = BTreeMap::new();
    flatten("", &run.config, &mut flat);
    flat.iter().filter(|(k, v)| *v != "null" && has_effect(k, &flat)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Whether `key` names where a run was written rather than how it was trained.
fn is_output_key(key: &str) -> bool {
    OUTPUT_KEYS.contains(&key.rsplit('.').next().unwrap_or(key))
}

/// Whether `value` is the run directory `dir` (or names it).
fn is_own_dir(value: &str, dir: &std::path::Path) -> bool {
    let p = std::path::Path::new(value);
    p == dir || p.file_name().is_some_and(|n| Some(n) == dir.file_name())
}

/// The keys of `acting` (one map per run or experiment, written into `dirs[i]`) whose values
/// differ, leaving out output keys and keys whose value is everywhere the own directory.
fn differing(acting: &[BTreeMap<String, String>], dirs: &[&std::path::Path]) -> Settings {
    let all_keys: BTreeSet<&String> = acting.iter().flat_map(|m| m.keys()).collect();
    let mut keys = Vec::new();
    for key in all_keys {
        if is_output_key(key) {
            continue;
        }
        let values: Vec<Option<&String>> = acting.iter().map(|m| m.get(key)).collect();
        if values.iter().all(|v| *v == values[0]) {
            continue;
        }
        let own_dir = dirs.iter().zip(&values).all(|(d, v)| v.is_some_and(|v| is_own_dir(v, d)));
        if !own_dir {
            keys.push(key.clone());
        }
    }
    let values = acting
        .iter()
        .map(|m| keys.iter().map(|k| (k.clone(), m.get(k).cloned().unwrap_or_else(|| "–".to_string()))).collect())
        .collect();
    Settings { keys, values }
}

/// The config keys whose values differ between runs, leaving out where each run was written
/// (keys named like an output path, or whose value is the run's own directory). Per run, a
/// setting that has no effect there (β without effective-number weights or resampling) or is
/// unset (null) counts as absent; a key is kept when these values differ.
pub fn differing_settings(runs: &[Run]) -> Settings {
    let acting: Vec<BTreeMap<String, String>> = runs.iter().map(acting_settings).collect();
    let dirs: Vec<&std::path::Path> = runs.iter().map(|r| r.dir.as_path()).collect();
    differing(&acting, &dirs)
}

/// One label per run, unique: `overrides[i]` (`--label`) for run i, else the run's own
/// `label` (run.json; `lt run` sets it to the experiment's name), else the directory name.
/// Runs that would share a label get their directory name (or path) after it.
pub fn run_labels(runs: &[Run], overrides: &[String]) -> Vec<String> {
    unique_labels(&runs.iter().collect::<Vec<_>>(), overrides)
}

/// The name given to run i: `overrides[i]` (`--label`) when not blank, else run.json `label`.
fn given_name<'a>(run: &'a Run, i: usize, overrides: &'a [String]) -> Option<&'a str> {
    overrides.get(i).filter(|l| !l.trim().is_empty()).or(run.label.as_ref()).map(String::as_str)
}

fn unique_labels(runs: &[&Run], overrides: &[String]) -> Vec<String> {
    let given: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| given_name(run, i, overrides).map(str::to_string).unwrap_or_else(|| run.dir_name()))
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

/// The runs grouped into experiments (see [`crate::experiments`]), each with its label and
/// its acting settings: what its runs share, and for a setting that varies by seed the
/// values of its runs joined (`0, 1, 2`).
fn experiments_of(runs: &[Run], overrides: &[String]) -> (Vec<Experiment>, Vec<BTreeMap<String, String>>) {
    let acting: Vec<BTreeMap<String, String>> = runs.iter().map(acting_settings).collect();
    // What must agree between seeds: everything but where a run was written and its seed.
    let trained: Vec<BTreeMap<String, String>> = runs
        .iter()
        .zip(&acting)
        .map(|(r, m)| {
            m.iter()
                .filter(|(k, v)| !is_output_key(k) && !is_own_dir(v, &r.dir) && !varies_by_seed(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let names: Vec<Option<&str>> = runs.iter().enumerate().map(|(i, r)| given_name(r, i, overrides)).collect();
    let groups = experiments::group(&names, &trained);
    let firsts: Vec<&Run> = groups.iter().map(|g| &runs[g[0]]).collect();
    let first_overrides: Vec<String> =
        groups.iter().map(|g| overrides.get(g[0]).cloned().unwrap_or_default()).collect();
    let labels = unique_labels(&firsts, &first_overrides);
    let settings = groups
        .iter()
        .map(|g| {
            let keys: BTreeSet<&String> = g.iter().flat_map(|&i| acting[i].keys()).collect();
            keys.into_iter()
                .filter_map(|k| {
                    let values: Vec<Option<&String>> = g.iter().map(|&i| acting[i].get(k)).collect();
                    let value = if values.iter().all(|v| *v == values[0]) || !varies_by_seed(k) {
                        // Agrees, or is where each run was written: the first run's stands.
                        values[0]?.clone()
                    } else {
                        let mut distinct: Vec<&str> = Vec::new();
                        for v in &values {
                            let v = v.map_or("–", String::as_str);
                            if !distinct.contains(&v) {
                                distinct.push(v);
                            }
                        }
                        distinct.join(", ")
                    };
                    Some((k.clone(), value))
                })
                .collect()
        })
        .collect();
    let experiments = groups.into_iter().zip(labels).map(|(g, label)| Experiment::new(label, g, runs)).collect();
    (experiments, settings)
}

/// Everything the figures and tables are drawn from.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub runs: Vec<Run>,
    /// Per run, the label of its experiment.
    pub labels: Vec<String>,
    /// The runs grouped into experiments (seeds of one experiment share a label); the figures
    /// draw one series per experiment.
    pub experiments: Vec<Experiment>,
    /// Per experiment, the settings in which the experiments differ.
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
    /// [`run_labels`]' rules. Runs that share a given name and their settings but for the
    /// seed become one experiment.
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
        let (experiments, acting) = experiments_of(&runs, labels);
        let dirs: Vec<&std::path::Path> = experiments.iter().map(|e| runs[e.runs[0]].dir.as_path()).collect();
        let settings = differing(&acting, &dirs);
        let mut labels = vec![String::new(); runs.len()];
        for e in &experiments {
            for &i in &e.runs {
                labels[i] = e.label.clone();
            }
        }
        Ok(Self {
            class_names: first.class_names.clone(),
            runs,
            labels,
            experiments,
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

    /// Whether some experiment has more than one run (the report then shows spreads).
    pub fn has_seeds(&self) -> bool {
        self.experiments.iter().any(|e| e.runs.len() > 1)
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
