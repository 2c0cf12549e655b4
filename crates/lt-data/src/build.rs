//! `lt-data build`: source -> long-tail subset -> manifests -> a dataset directory.
//!
//! Everything is written into `OUT.partial` and renamed to `OUT` only when complete; on any
//! error the partial directory is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::DataError;
use crate::meta::{DatasetMeta, FORMAT_VERSION, ManifestMeta};
use crate::parquet::{SplitRows, write_manifest, write_samples, write_subset};
use crate::profile::{Profile, count_labels, read_indices_file, select_subset};
use crate::progress::Progress;
use crate::resample::{Strategy, manifest};
use crate::source::{self, Dataset, SourceOptions, SourceSpec};

/// The profile as given on the command line: the indices form is read once the source's
/// train split size is known.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileSpec {
    Ready(Profile),
    IndicesFile(PathBuf),
}

/// Everything `build` needs.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// The `--source` text as given (recorded in dataset.json).
    pub source_text: String,
    pub source: SourceSpec,
    pub source_options: SourceOptions,
    pub profile: ProfileSpec,
    pub seed: u64,
    pub strategies: Vec<Strategy>,
    pub epochs: u32,
    pub out: PathBuf,
    pub force: bool,
}

/// `OUT.partial`, next to OUT.
pub fn partial_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "dataset".into());
    name.push(".partial");
    out.with_file_name(name)
}

/// Refuse an existing non-empty output directory unless `force`.
pub fn check_out(out: &Path, force: bool) -> Result<(), DataError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(DataError::OutputExists { path: out.into() });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(DataError::Write { path: out.into(), message: "exists and is not a directory".into() })
        }
        Err(e) => Err(DataError::io(out, e)),
    }
}

/// Read the source and build the dataset directory.
pub fn build(cfg: &BuildConfig, progress: &dyn Progress) -> Result<DatasetMeta, DataError> {
    check_out(&cfg.out, cfg.force)?;
    let data = source::load(&cfg.source, &cfg.source_options, progress)?;
    build_from(cfg, data, progress)
}

fn source_json(cfg: &BuildConfig) -> serde_json::Value {
    let o = &cfg.source_options;
    let options = match &cfg.source {
        SourceSpec::Cifar100(_) => json!({ "coarse": o.coarse }),
        SourceSpec::Folder(_) => json!({
            "size": o.size,
            "test_list": o.test_list.as_ref().map(|p| p.display().to_string()),
            "image_root": o.image_root.as_ref().map(|p| p.display().to_string()),
        }),
        SourceSpec::Synthetic(n) => {
            json!({ "per_class": n, "test_per_class": o.test_per_class, "seed": o.synthetic_seed })
        }
        SourceSpec::Cifar10(_) | SourceSpec::Cifar10Py(_) => json!({}),
    };
    json!({ "spec": cfg.source_text, "kind": cfg.source.kind(), "options": options })
}

/// Build the dataset directory from an already loaded data set.
pub fn build_from(cfg: &BuildConfig, data: Dataset, progress: &dyn Progress) -> Result<DatasetMeta, DataError> {
    check_out(&cfg.out, cfg.force)?;
    let c = data.num_classes();
    let profile = match &cfg.profile {
        ProfileSpec::Ready(p) => p.clone(),
        ProfileSpec::IndicesFile(path) => {
            Profile::Indices { origin: path.display().to_string(), indices: read_indices_file(path, data.train.len())? }
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for s in &cfg.strategies {
        if !seen.insert(s.name()) {
            return Err(DataError::Invalid(format!("resampler `{}` is listed twice", s.name())));
        }
    }
    progress.stage("subset and manifests", 0);
    let indices = select_subset(&data.train.labels, &data.class_names, &profile, cfg.seed)?;
    let labels: Vec<u16> = indices.iter().map(|&i| data.train.labels[i as usize]).collect();
    let manifests = cfg
        .strategies
        .iter()
        .map(|s| manifest(s, &indices, &labels, c, cfg.epochs, cfg.seed).map(|m| (s.clone(), m)))
        .collect::<Result<Vec<_>, _>>()?;
    progress.finish();

    let staging = partial_dir(&cfg.out);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    }
    if let Some(parent) = staging.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    std::fs::create_dir(&staging).map_err(|e| DataError::io(&staging, e))?;
    let result = write_all(cfg, data, &profile, &indices, &labels, &manifests, &staging, progress);
    let meta = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    progress.stage("replace output directory", 0);
    if cfg.out.exists() {
        // check_out allowed it: empty, or --force.
        if let Err(e) = std::fs::remove_dir_all(&cfg.out) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(DataError::io(&cfg.out, e));
        }
    }
    std::fs::rename(&staging, &cfg.out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        DataError::io(&cfg.out, e)
    })?;
    progress.finish();
    Ok(meta)
}

#[allow(clippy::too_many_arguments)]
fn write_all(
    cfg: &BuildConfig,
    data: Dataset,
    profile: &Profile,
    indices: &[u32],
    labels: &[u16],
    manifests: &[(Strategy, crate::resample::Manifest)],
    dir: &Path,
    progress: &dyn Progress,
) -> Result<DatasetMeta, DataError> {
    let c = data.num_classes();
    let image_len = data.image_len();
    let Dataset { class_names, image_shape, train, test } = data;
    let rows = vec![
        SplitRows { name: "train", labels: &train.labels, images: train.images },
        SplitRows { name: "test", labels: &test.labels, images: test.images },
    ];
    // The big samples table on one thread, the small tables on another.
    let (samples, small) = rayon::join(
        || write_samples(&dir.join("samples.parquet"), rows, image_len, progress),
        || -> Result<Vec<(String, String)>, DataError> {
            let mut hashes =
                vec![("subset.parquet".to_string(), write_subset(&dir.join("subset.parquet"), indices, labels)?)];
            for (s, m) in manifests {
                let file = format!("manifest-{}.parquet", s.name());
                hashes.push((file.clone(), write_manifest(&dir.join(&file), m)?));
            }
            Ok(hashes)
        },
    );
    let mut files = BTreeMap::new();
    files.insert("samples.parquet".to_string(), samples?);
    files.extend(small?);

    let source_counts = count_labels(&train.labels, c);
    let mut manifest_meta = BTreeMap::new();
    for (s, m) in manifests {
        let mut class_counts = vec![0u64; c];
        for &i in &m.index {
            class_counts[train.labels[i as usize] as usize] += 1;
        }
        let mut epoch_len = vec![0u64; cfg.epochs as usize];
        for &e in &m.epoch {
            epoch_len[e as usize] += 1;
        }
        manifest_meta.insert(
            s.name().to_string(),
            ManifestMeta {
                file: format!("manifest-{}.parquet", s.name()),
                epochs: cfg.epochs,
                epoch_len,
                beta: match s {
                    Strategy::EffectiveNumber { beta } => Some(*beta),
                    _ => None,
                },
                class_counts,
            },
        );
    }
    let meta = DatasetMeta {
        format_version: FORMAT_VERSION,
        source: source_json(cfg),
        profile: profile.describe(&source_counts, cfg.seed),
        seed: cfg.seed,
        class_names,
        image_shape,
        source_counts,
        subset_counts: count_labels(labels, c),
        test_counts: count_labels(&test.labels, c),
        manifests: manifest_meta,
        files,
    };
    let path = dir.join("dataset.json");
    std::fs::write(&path, meta.to_json()).map_err(|e| DataError::io(&path, e))?;
    Ok(meta)
}
