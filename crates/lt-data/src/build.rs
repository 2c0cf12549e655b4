//! `lt-data build`: source -> long-tail subset -> manifests -> a dataset directory.
//!
//! Everything is written into `OUT.partial` (an [`lt_fs::Staging`]) and swapped in for `OUT`
//! only when complete; on any error the partial directory is removed and `OUT` is untouched.
//! `--force` replaces only a dataset directory lt-data wrote (its `.lt-output.json` marker, or
//! the dataset.json of an older lt-data).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::DataError;
use crate::meta::{DatasetMeta, FORMAT_VERSION, ManifestMeta, ValidationMeta};
use crate::parquet::{ImageSource, SplitRows, write_manifest, write_samples, write_subset};
use crate::profile::{Profile, count_labels, read_indices_file, select_subset_after};
use crate::progress::Progress;
use crate::resample::{Strategy, manifest};
use crate::source::{self, Dataset, SourceOptions, SourceSpec, cifar};
use crate::validation;

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
    /// Images of every class held out as the validation split before the long-tail cut
    /// (`--val-per-class`); 0 for none.
    pub val_per_class: u64,
    pub strategies: Vec<Strategy>,
    pub epochs: u32,
    pub out: PathBuf,
    pub force: bool,
}

/// `OUT.partial`, next to OUT: where a build writes before the swap.
pub fn partial_dir(out: &Path) -> PathBuf {
    lt_fs::staging_path(out)
}

/// Read the source and build the dataset directory.
pub fn build(cfg: &BuildConfig, progress: &dyn Progress) -> Result<DatasetMeta, DataError> {
    // Refusals (not empty, not lt's, protected) come before the source is read.
    let staging = lt_fs::Staging::begin(&cfg.out, lt_fs::owners::DATASET, cfg.force)?;
    let loaded = match &cfg.source {
        // CIFAR binary: map the files and hand the images to the writer where they lie.
        SourceSpec::Cifar10(dir) => map_cifar(cifar::plan_cifar10(dir)?, progress)?,
        SourceSpec::Cifar100(dir) => map_cifar(cifar::plan_cifar100(dir, cfg.source_options.coarse)?, progress)?,
        _ => Loaded::from(source::load(&cfg.source, &cfg.source_options, progress)?),
    };
    build_loaded(cfg, loaded, staging, progress)
}

/// A loaded source: labels in memory, images wherever they are.
struct Loaded {
    class_names: Vec<String>,
    image_shape: [usize; 3],
    train_labels: Vec<u16>,
    test_labels: Vec<u16>,
    train_images: ImageSource,
    test_images: ImageSource,
}

impl From<Dataset> for Loaded {
    fn from(d: Dataset) -> Self {
        let len = d.image_len();
        Loaded {
            class_names: d.class_names,
            image_shape: d.image_shape,
            train_labels: d.train.labels,
            test_labels: d.test.labels,
            train_images: ImageSource::packed(d.train.images, len),
            test_images: ImageSource::packed(d.test.images, len),
        }
    }
}

/// Map CIFAR record files into memory (read-only) and check their sizes and labels. The files
/// must not be modified while the build runs.
fn map_cifar(plan: cifar::Plan, progress: &dyn Progress) -> Result<Loaded, DataError> {
    let layout = plan.layout;
    let map_split = |files: &[PathBuf]| -> Result<(Vec<u16>, ImageSource), DataError> {
        let sizes = cifar::check_sizes(files, layout)?;
        let mut labels = Vec::new();
        let mut buffers = Vec::new();
        for (path, &size) in files.iter().zip(&sizes) {
            let n = size as usize / layout.record_len();
            if size == 0 {
                buffers.push((polars_buffer::Buffer::from(Vec::new()), 0));
                continue;
            }
            let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
            // SAFETY: the mapping is read-only and private to this process; like every reader
            // of mapped files we rely on the file not being truncated while it is mapped.
            let map = unsafe { memmap2::MmapOptions::new().len(size as usize).populate().map(&file) }
                .map_err(|e| DataError::io(path, e))?;
            cifar::record_labels(path, &map, layout, &mut labels)?;
            progress.advance(size);
            buffers.push((polars_buffer::Buffer::from_owner(map), n));
        }
        Ok((labels, ImageSource { buffers, prefix: layout.prefix, record: layout.record_len() }))
    };
    let total: u64 =
        cifar::check_sizes(&plan.train, layout)?.iter().chain(&cifar::check_sizes(&plan.test, layout)?).sum();
    progress.stage("map source", total);
    let (train_labels, train_images) = map_split(&plan.train)?;
    let (test_labels, test_images) = map_split(&plan.test)?;
    progress.finish();
    Ok(Loaded {
        class_names: plan.class_names,
        image_shape: [3, 32, 32],
        train_labels,
        test_labels,
        train_images,
        test_images,
    })
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
    let staging = lt_fs::Staging::begin(&cfg.out, lt_fs::owners::DATASET, cfg.force)?;
    build_loaded(cfg, Loaded::from(data), staging, progress)
}

/// Writes the dataset into `staging` and swaps it in; dropping `staging` on an error removes
/// it and leaves the old output as it was.
fn build_loaded(
    cfg: &BuildConfig,
    data: Loaded,
    staging: lt_fs::Staging,
    progress: &dyn Progress,
) -> Result<DatasetMeta, DataError> {
    let c = data.class_names.len();
    let profile = match &cfg.profile {
        ProfileSpec::Ready(p) => p.clone(),
        ProfileSpec::IndicesFile(path) => Profile::Indices {
            origin: path.display().to_string(),
            indices: read_indices_file(path, data.train_labels.len())?,
        },
    };
    let mut seen = std::collections::BTreeSet::new();
    for s in &cfg.strategies {
        if !seen.insert(s.name()) {
            return Err(DataError::Invalid(format!("resampler `{}` is listed twice", s.name())));
        }
    }
    progress.stage("subset and manifests", 0);
    // Validation first, the long-tail cut from what is left; an indices list is a subset
    // given in full, so validation comes from the images it does not list.
    let (reserved, keep_for_training): (&[u32], u64) = match &profile {
        Profile::Indices { indices, .. } => (indices, 0),
        _ => (&[], 1),
    };
    let validation = validation::hold_out(
        &data.train_labels,
        &data.class_names,
        cfg.val_per_class,
        cfg.seed,
        reserved,
        keep_for_training,
    )?;
    let indices = select_subset_after(&data.train_labels, &data.class_names, &profile, cfg.seed, &validation)?;
    let labels: Vec<u16> = indices.iter().map(|&i| data.train_labels[i as usize]).collect();
    let manifests = cfg
        .strategies
        .iter()
        .map(|s| manifest(s, &indices, &labels, c, cfg.epochs, cfg.seed).map(|m| (s.clone(), m)))
        .collect::<Result<Vec<_>, _>>()?;
    progress.finish();

    let split = Selection { indices: &indices, labels: &labels, validation: &validation };
    let meta = write_all(cfg, data, &profile, split, &manifests, staging.path(), progress)?;
    progress.stage("replace output directory", 0);
    staging.commit()?;
    progress.finish();
    Ok(meta)
}

/// What was taken from the train split: the subset (indices and their labels) and the
/// validation split (indices; empty without `--val-per-class`).
struct Selection<'a> {
    indices: &'a [u32],
    labels: &'a [u16],
    validation: &'a [u32],
}

fn write_all(
    cfg: &BuildConfig,
    data: Loaded,
    profile: &Profile,
    split: Selection<'_>,
    manifests: &[(Strategy, crate::resample::Manifest)],
    dir: &Path,
    progress: &dyn Progress,
) -> Result<DatasetMeta, DataError> {
    let c = data.class_names.len();
    let image_len: usize = data.image_shape.iter().product();
    let Loaded { class_names, image_shape, train_labels, test_labels, train_images, test_images } = data;
    let Selection { indices, labels, validation } = split;
    let validation_labels: Vec<u16> = validation.iter().map(|&i| train_labels[i as usize]).collect();
    let rows = vec![
        SplitRows { name: "train", labels: &train_labels, images: train_images },
        SplitRows { name: "test", labels: &test_labels, images: test_images },
    ];
    // The big samples table on one thread, the small tables on another.
    let (samples, small) = rayon::join(
        || write_samples(&dir.join("samples.parquet"), rows, image_len, progress),
        || -> Result<Vec<(String, String)>, DataError> {
            let mut hashes =
                vec![("subset.parquet".to_string(), write_subset(&dir.join("subset.parquet"), indices, labels)?)];
            if !validation.is_empty() {
                let hash = write_subset(&dir.join(validation::FILE), validation, &validation_labels)?;
                hashes.push((validation::FILE.to_string(), hash));
            }
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

    let source_counts = count_labels(&train_labels, c);
    let mut manifest_meta = BTreeMap::new();
    for (s, m) in manifests {
        let mut class_counts = vec![0u64; c];
        for &i in &m.index {
            class_counts[train_labels[i as usize] as usize] += 1;
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
    let validation_counts = if validation.is_empty() { Vec::new() } else { count_labels(&validation_labels, c) };
    // The profile saw the train split without the validation images (its default n_max too).
    let cut_from: Vec<u64> =
        source_counts.iter().enumerate().map(|(k, &n)| n - validation_counts.get(k).copied().unwrap_or(0)).collect();
    let meta = DatasetMeta {
        format_version: FORMAT_VERSION,
        source: source_json(cfg),
        profile: profile.describe(&cut_from, cfg.seed),
        seed: cfg.seed,
        class_names,
        image_shape,
        source_counts,
        subset_counts: count_labels(labels, c),
        test_counts: count_labels(&test_labels, c),
        validation: (!validation.is_empty()).then(|| ValidationMeta {
            file: validation::FILE.to_string(),
            per_class: cfg.val_per_class,
            rule: validation::RULE.to_string(),
        }),
        validation_counts,
        manifests: manifest_meta,
        files,
    };
    lt_fs::write_atomic(&dir.join("dataset.json"), meta.to_json().as_bytes())?;
    Ok(meta)
}
