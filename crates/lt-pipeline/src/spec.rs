//! Pipeline files: parsing, `--set` overrides and resolution into fully specified steps.
//!
//! A pipeline file has top-level `name`, `description`, `out`, a `[data]` table (the
//! `lt-data build` settings), a `[train]` table (lt-train settings shared by every
//! experiment: the keys of `TrainConfig`), one `[[experiment]]` table per run (a `name`
//! plus the settings in which it differs) and a `[report]` table (lt-report settings).

use std::path::{Path, PathBuf};

use lt_format::TrainConfig;
use lt_format::vocab::{Profile, Resampler, ShotMode, Vocab};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::error::PipelineError;

const TOP_KEYS: [&str; 8] = ["name", "description", "out", "seeds", "data", "train", "experiment", "report"];
/// Most seeds a pipeline may list.
pub const MAX_SEEDS: usize = 100;
/// Keys of `[train]`/`[[experiment]]` that the pipeline sets itself.
const PIPELINE_OWNED: [&str; 2] = ["data", "out"];

/// The `[data]` table: `lt-data build` flags with `_` for `-`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSettings {
    /// KIND:ARG as `lt-data build --source` (cifar10:DIR, cifar100:DIR, cifar10-py:DIR,
    /// folder:DIR, synthetic:N).
    pub source: String,
    /// When the source directory is missing, download it with `lt-data fetch` (CIFAR kinds).
    pub fetch: bool,
    pub profile: Profile,
    pub imbalance: Option<f64>,
    pub n_max: Option<u64>,
    pub shuffle_classes: bool,
    /// Per-class counts (profile `counts`).
    pub counts: Option<Vec<u64>>,
    /// Index list file (profile `indices`).
    pub indices: Option<PathBuf>,
    /// Manifests to write; the experiments' `resample` strategies are added when resolving.
    pub resample: Vec<String>,
    /// Epochs per manifest; resolved to the longest experiment when absent.
    pub epochs: Option<u32>,
    /// β of the effective-number resampler.
    pub beta: Option<f64>,
    pub seed: u64,
    pub coarse: bool,
    pub size: Option<u32>,
    pub test_list: Option<PathBuf>,
    pub image_root: Option<PathBuf>,
    pub test_per_class: Option<u64>,
    pub synthetic_seed: Option<u64>,
    /// Images per class held out of the training source, before the long-tail cut, as a
    /// balanced validation split (`lt-data build --val-per-class`); runs choose their
    /// reported epoch on it.
    pub val_per_class: Option<u64>,
}

impl Default for DataSettings {
    fn default() -> Self {
        DataSettings {
            source: String::new(),
            fetch: false,
            profile: Profile::Exp,
            imbalance: None,
            n_max: None,
            shuffle_classes: false,
            counts: None,
            indices: None,
            resample: Vec::new(),
            epochs: None,
            beta: None,
            seed: 0,
            coarse: false,
            size: None,
            test_list: None,
            image_root: None,
            test_per_class: None,
            synthetic_seed: None,
            val_per_class: None,
        }
    }
}

/// The `[report]` table: `lt-report` flags with `_` for `-`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    pub title: Option<String>,
    /// auto, thresholds or thirds.
    pub shots: ShotMode,
    pub many_above: u64,
    pub few_below: u64,
    pub linear_counts: bool,
    /// A literature file (lt-report's `--literature`: `[[row]]` method, dataset, imbalance,
    /// accuracy, source) printed beside lt's numbers as published results, not re-run.
    pub literature: Option<PathBuf>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            title: None,
            shots: ShotMode::Auto,
            many_above: 100,
            few_below: 20,
            linear_counts: false,
            literature: None,
        }
    }
}

/// One resolved run of an experiment: its name and the complete lt-train configuration.
/// With `seeds`, an experiment is one run per seed, all with the experiment's name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// The experiment's name: the run's label in reports (runs of one experiment share it).
    pub name: String,
    pub description: Option<String>,
    /// The seed of this run when the pipeline lists `seeds`.
    pub seed: Option<u64>,
    pub config: TrainConfig,
}

impl Experiment {
    /// Names this run among the pipeline's runs (stamps, config files, step names):
    /// `NAME`, or `NAME.seed-S` with seeds.
    pub fn run_id(&self) -> String {
        match self.seed {
            Some(s) => format!("{}.seed-{s}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A fully resolved pipeline: every setting of every step, with absolute paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    /// The file it was read from.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// Root of the outputs: data/, runs/NAME/, report/, configs/, stamps/.
    pub out: PathBuf,
    pub data: DataSettings,
    pub report: ReportSettings,
    /// Every run: each experiment once, or once per seed in the order of `seeds`.
    pub experiment: Vec<Experiment>,
    /// The seeds every experiment runs with (empty: once, with its own `seed`).
    pub seeds: Vec<u64>,
}

impl Pipeline {
    pub fn data_dir(&self) -> PathBuf {
        self.out.join("data")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.out.join("runs")
    }
    pub fn report_dir(&self) -> PathBuf {
        self.out.join("report")
    }
    pub fn stamps_dir(&self) -> PathBuf {
        self.out.join("stamps")
    }
    pub fn configs_dir(&self) -> PathBuf {
        self.out.join("configs")
    }

    /// The resolved settings as TOML (what `lt run --show-config` prints).
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Shown<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            description: &'a Option<String>,
            file: &'a Path,
            out: &'a Path,
            data: &'a DataSettings,
            report: &'a ReportSettings,
            experiment: &'a [Experiment],
        }
        let shown = Shown {
            name: &self.name,
            description: &self.description,
            file: &self.file,
            out: &self.out,
            data: &self.data,
            report: &self.report,
            experiment: &self.experiment,
        };
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print the resolved settings as TOML: {e}\n"))
    }
}

/// Command-line changes applied before resolving.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `data.source` (and turns `data.fetch` off: a given source must exist).
    pub source: Option<String>,
    /// Replaces `out`.
    pub out: Option<PathBuf>,
    /// `KEY.PATH=VALUE` pairs: `data.imbalance=50`, `train.epochs=2`,
    /// `experiment.NAME.lr=0.05`. VALUE is read as a TOML value, else as a string.
    pub set: Vec<String>,
}

/// Reads, overrides and resolves a pipeline file; relative paths are taken from `cwd`.
pub fn load(file: &Path, overrides: &Overrides, cwd: &Path) -> Result<Pipeline, PipelineError> {
    let text = read_pipeline_file(file)?;
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| PipelineError::Toml { file: file.to_path_buf(), message: e.to_string() })?;
    for s in &overrides.set {
        apply_set(&mut doc, s).map_err(|message| PipelineError::Set { setting: s.clone(), message })?;
    }
    if let Some(src) = &overrides.source {
        let data = doc.entry("data").or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = data {
            t.insert("source".into(), Value::String(src.clone()));
            t.insert("fetch".into(), Value::Boolean(false));
        }
    }
    if let Some(out) = &overrides.out {
        doc.insert("out".into(), Value::String(out.display().to_string()));
    }
    resolve(file, doc, cwd)
}

/// Largest pipeline file read: pipelines are a few kilobytes; this keeps `lt run /dev/zero`
/// or a mistaken multi-gigabyte path from growing memory without bound.
pub const MAX_PIPELINE_BYTES: u64 = 4 << 20;

fn read_pipeline_file(file: &Path) -> Result<String, PipelineError> {
    use std::io::Read;
    let io = |source| PipelineError::Io { path: file.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(file).map_err(io)?.take(MAX_PIPELINE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_PIPELINE_BYTES {
        return Err(PipelineError::Toml {
            file: file.to_path_buf(),
            message: format!("larger than {MAX_PIPELINE_BYTES} bytes; a pipeline file is a few kilobytes of TOML"),
        });
    }
    String::from_utf8(bytes).map_err(|e| PipelineError::Toml {
        file: file.to_path_buf(),
        message: format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

fn apply_set(doc: &mut Table, setting: &str) -> Result<(), String> {
    let (path, raw) = setting.split_once('=').ok_or("expected KEY.PATH=VALUE, e.g. train.epochs=2")?;
    let value = match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(Value::String(raw.into())),
        Err(_) => Value::String(raw.into()),
    };
    let parts: Vec<&str> = path.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{path}` has an empty key"));
    }
    let (table, key): (&mut Table, &str) = match parts.as_slice() {
        [key] => (doc, key),
        ["experiment", name, key] => {
            let list =
                doc.get_mut("experiment").and_then(Value::as_array_mut).ok_or("the file has no [[experiment]]")?;
            let t = list
                .iter_mut()
                .filter_map(Value::as_table_mut)
                .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| format!("no [[experiment]] is named `{name}`"))?;
            (t, key)
        }
        [section, key] if ["data", "train", "report"].contains(section) => {
            let t = doc.entry(section.to_string()).or_insert_with(|| Value::Table(Table::new()));
            (t.as_table_mut().ok_or_else(|| format!("`{section}` is not a table"))?, key)
        }
        _ => return Err(format!("`{path}`: use KEY, data.KEY, train.KEY, report.KEY or experiment.NAME.KEY")),
    };
    table.insert(key.to_string(), value);
    Ok(())
}

/// The field names of a serialisable default (Options serialise as null, so all appear).
fn keys_of<T: Serialize>(value: &T) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn check_keys(
    file: &Path,
    table: &Table,
    section: &str,
    allowed: &[String],
    reserved: &[&str],
) -> Result<(), PipelineError> {
    for key in table.keys() {
        if reserved.contains(&key.as_str()) {
            return Err(PipelineError::Key {
                file: file.to_path_buf(),
                path: format!("{section}{key}"),
                hint: "the pipeline sets it (datasets go to OUT/data, runs to OUT/runs/NAME); remove the key".into(),
            });
        }
        if !allowed.iter().any(|a| a == key) {
            return Err(PipelineError::Key {
                file: file.to_path_buf(),
                path: format!("{section}{key}"),
                hint: format!(
                    "unknown key; known keys here: {}",
                    allowed.iter().filter(|a| !reserved.contains(&a.as_str())).cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn section<'a>(file: &Path, doc: &'a Table, key: &str) -> Result<Option<&'a Table>, PipelineError> {
    match doc.get(key) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(other) => Err(PipelineError::Invalid {
            file: file.to_path_buf(),
            path: key.into(),
            message: format!("expected a table [{key}], found a {}", other.type_str()),
        }),
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) }
}

/// Makes a source spec's path absolute (synthetic:N has none).
fn absolute_source(cwd: &Path, spec: &str) -> String {
    match spec.split_once(':') {
        Some((kind, arg)) if kind != "synthetic" && !arg.is_empty() => {
            format!("{kind}:{}", absolute(cwd, Path::new(arg)).display())
        }
        _ => spec.to_string(),
    }
}

fn resolve(file: &Path, doc: Table, cwd: &Path) -> Result<Pipeline, PipelineError> {
    let file_abs = absolute(cwd, file);
    let invalid = |path: &str, message: String| PipelineError::Invalid {
        file: file.to_path_buf(),
        path: path.to_string(),
        message,
    };
    let top: Vec<String> = TOP_KEYS.iter().map(|s| s.to_string()).collect();
    check_keys(file, &doc, "", &top, &[])?;

    let name = match doc.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(invalid("name", "expected a non-empty string".into())),
        None => file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".into()),
    };
    let description = match doc.get("description") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("description", "expected a string".into())),
    };
    let out = match doc.get("out") {
        None => PathBuf::from("out").join(&name),
        Some(Value::String(s)) if !s.is_empty() => PathBuf::from(s),
        Some(_) => return Err(invalid("out", "expected a directory path string".into())),
    };
    let out = absolute(cwd, &out);
    let seeds: Vec<u64> = match doc.get("seeds") {
        None => Vec::new(),
        Some(v) => {
            let seeds: Vec<u64> = v.clone().try_into().map_err(|_| {
                invalid("seeds", format!("expected a list of seeds (integers >= 0), e.g. [0, 1, 2]; found {v}"))
            })?;
            if seeds.is_empty() || seeds.len() > MAX_SEEDS {
                return Err(invalid("seeds", format!("list 1 to {MAX_SEEDS} seeds, e.g. [0, 1, 2]")));
            }
            if let Some(d) = seeds.iter().enumerate().find_map(|(i, s)| seeds[..i].contains(s).then_some(s)) {
                return Err(invalid("seeds", format!("seed {d} is listed twice")));
            }
            seeds
        }
    };

    // [data]
    let data_table = section(file, &doc, "data")?.cloned().unwrap_or_default();
    check_keys(file, &data_table, "data.", &keys_of(&DataSettings::default()), &[])?;
    let mut data: DataSettings =
        Value::Table(data_table).try_into().map_err(|e: toml::de::Error| invalid("data", e.message().to_string()))?;
    if data.source.trim().is_empty() {
        return Err(invalid(
            "data.source",
            "missing; give KIND:ARG, e.g. synthetic:600 or cifar10:data/cifar-10-batches-bin".into(),
        ));
    }
    let kind = data.source.split_once(':').map(|(k, _)| k).unwrap_or("");
    if !["cifar10", "cifar100", "cifar10-py", "folder", "synthetic"].contains(&kind) {
        return Err(invalid(
            "data.source",
            format!("`{}`: use cifar10:DIR, cifar100:DIR, cifar10-py:DIR, folder:DIR or synthetic:N", data.source),
        ));
    }
    if data.fetch && !["cifar10", "cifar100", "cifar10-py"].contains(&kind) {
        return Err(invalid("data.fetch", format!("`lt-data fetch` downloads CIFAR only, not `{kind}` sources")));
    }
    data.source = absolute_source(cwd, &data.source);
    match data.profile.name() {
        "exp" | "step" if data.imbalance.is_none_or(|f| f.is_nan() || f < 1.0) => {
            return Err(invalid("data.imbalance", "profile exp/step needs imbalance = IF >= 1 (e.g. 100)".into()));
        }
        "counts" if data.counts.as_ref().is_none_or(Vec::is_empty) => {
            return Err(invalid("data.counts", "profile counts needs counts = [n0, n1, ...]".into()));
        }
        "indices" if data.indices.is_none() => {
            return Err(invalid(
                "data.indices",
                "profile indices needs indices = \"FILE\" (one index per line)".into(),
            ));
        }
        _ => {}
    }
    for p in [&mut data.indices, &mut data.test_list, &mut data.image_root].into_iter().flatten() {
        *p = absolute(cwd, p);
    }

    // [train] and [[experiment]]
    let train_keys: Vec<String> = TrainConfig::keys().iter().map(|k| k.to_string()).collect();
    let shared = section(file, &doc, "train")?.cloned().unwrap_or_default();
    check_keys(file, &shared, "train.", &train_keys, &PIPELINE_OWNED)?;
    let list = match doc.get("experiment") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(Value::Array(_)) | None => {
            return Err(invalid("experiment", "no experiments; add at least one [[experiment]] with a name".into()));
        }
        Some(other) => {
            return Err(invalid("experiment", format!("expected [[experiment]] tables, found a {}", other.type_str())));
        }
    };
    let data_dir = out.join("data");
    let mut experiments: Vec<Experiment> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Value::Table(t) = item else {
            return Err(invalid(&format!("experiment[{i}]"), "expected a table".into()));
        };
        let mut t = t.clone();
        let name = match t.remove("name") {
            Some(Value::String(s)) if valid_name(&s) => s,
            Some(Value::String(s)) => {
                return Err(invalid(
                    &format!("experiment[{i}].name"),
                    format!("`{s}`: use letters, digits, `-`, `_` and `.` (it names the run directory)"),
                ));
            }
            _ => {
                return Err(invalid(&format!("experiment[{i}].name"), "missing; every experiment needs a name".into()));
            }
        };
        if experiments.iter().any(|e| e.name == name) {
            return Err(invalid(&format!("experiment[{i}].name"), format!("`{name}` is used twice")));
        }
        let description = match t.remove("description") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid(&format!("experiment[{i}].description"), "expected a string".into())),
        };
        let at = format!("experiment[{i}] ({name}).");
        check_keys(file, &t, &at, &train_keys, &PIPELINE_OWNED)?;
        let t_has_seed = t.contains_key("seed") || shared.contains_key("seed");
        let mut merged = shared.clone();
        merged.extend(t);
        merged.insert("data".into(), Value::String(data_dir.display().to_string()));
        merged.insert("out".into(), Value::String(out.join("runs").join(&name).display().to_string()));
        let mut config: TrainConfig = Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&format!("experiment[{i}] ({name})"), e.message().to_string()))?;
        if let Some(m) = &config.model {
            config.model = Some(absolute(cwd, m));
        }
        config.validate().map_err(|e| invalid(&format!("experiment[{i}] ({name}).{}", e.field), e.to_string()))?;
        if seeds.is_empty() {
            experiments.push(Experiment { name, description, seed: None, config });
        } else {
            if t_has_seed {
                return Err(invalid(
                    &format!("{at}seed"),
                    "the pipeline lists `seeds`; drop the experiment's own seed".into(),
                ));
            }
            for &seed in &seeds {
                let out = out.join("runs").join(&name).join(format!("seed-{seed}"));
                let config = TrainConfig { seed, out, ..config.clone() };
                experiments.push(Experiment {
                    name: name.clone(),
                    description: description.clone(),
                    seed: Some(seed),
                    config,
                });
            }
        }
    }

    // Manifests: the [data] list, then every strategy an experiment trains on.
    for r in &data.resample {
        if let Err(e) = Resampler::parse_name(r) {
            return Err(invalid("data.resample", e.to_string()));
        }
    }
    for e in &experiments {
        if let Some(r) = &e.config.resample
            && !data.resample.contains(r)
        {
            data.resample.push(r.clone());
        }
    }
    if data.resample.is_empty() {
        data.resample.push("instance".into());
    }
    if data.resample.iter().any(|r| r == "effective-number") && data.beta.is_none() {
        return Err(invalid("data.beta", "the effective-number resampler needs beta in [0, 1), e.g. 0.9999".into()));
    }
    if data.epochs.is_none() {
        data.epochs = Some(experiments.iter().map(|e| e.config.epochs as u32).max().unwrap_or(1));
    }

    let report_table = section(file, &doc, "report")?.cloned().unwrap_or_default();
    check_keys(file, &report_table, "report.", &keys_of(&ReportSettings::default()), &[])?;
    let mut report: ReportSettings = Value::Table(report_table)
        .try_into()
        .map_err(|e: toml::de::Error| invalid("report", e.message().to_string()))?;
    if let Some(l) = &report.literature {
        report.literature = Some(absolute(cwd, l));
    }
    if report.title.is_none() {
        report.title = Some(description.clone().unwrap_or_else(|| format!("lt pipeline {name}")));
    }

    Ok(Pipeline { file: file_abs, name, description, out, data, report, experiment: experiments, seeds })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
