//! Dataset sources: CIFAR-10/100 binary, CIFAR-10 python pickles, image folders, synthetic.

pub mod cifar;
#[cfg(feature = "folder")]
pub mod folder;
pub mod pickle;
pub mod synthetic;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::progress::Progress;

/// The ten CIFAR-10 class names, in label order.
pub const CIFAR10_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// One split of a data set: labels and the images, concatenated, `image_len` bytes each in
/// channel-planar order (C·H·W).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub labels: Vec<u16>,
    pub images: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize, image_len: usize) -> &[u8] {
        &self.images[i * image_len..(i + 1) * image_len]
    }
}

/// A loaded data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// [C, H, W].
    pub image_shape: [usize; 3],
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    /// Bytes per image (C·H·W).
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// Default of [`SourceOptions::max_source_bytes`]: 8 GiB of images held in memory (CIFAR-10 is
/// 184 MB, ImageNet-LT at 64x64 about 2 GB).
pub const DEFAULT_MAX_SOURCE_BYTES: u64 = 8 << 30;

/// Which source to read (`--source KIND:ARG`).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    Cifar10Py(PathBuf),
    Folder(PathBuf),
    /// N training images per class.
    Synthetic(u64),
}

impl SourceSpec {
    /// Parse `KIND:ARG`.
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let bad = |message: String| DataError::Source { spec: spec.to_string(), message };
        let (kind, arg) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected KIND:ARG, e.g. cifar10:data/cifar-10-batches-bin or synthetic:5000".into()))?;
        if arg.is_empty() {
            return Err(bad("the part after `:` is empty".into()));
        }
        Ok(match kind {
            "cifar10" => SourceSpec::Cifar10(arg.into()),
            "cifar100" => SourceSpec::Cifar100(arg.into()),
            "cifar10-py" => SourceSpec::Cifar10Py(arg.into()),
            "folder" => SourceSpec::Folder(arg.into()),
            "synthetic" => SourceSpec::Synthetic(
                arg.parse()
                    .ok()
                    .filter(|&n: &u64| n > 0)
                    .ok_or_else(|| bad(format!("`{arg}` is not a positive number of images per class")))?,
            ),
            other => {
                return Err(bad(format!(
                    "unknown kind `{other}`; use cifar10, cifar100, cifar10-py, folder or synthetic"
                )));
            }
        })
    }

    /// The kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Cifar10(_) => "cifar10",
            SourceSpec::Cifar100(_) => "cifar100",
            SourceSpec::Cifar10Py(_) => "cifar10-py",
            SourceSpec::Folder(_) => "folder",
            SourceSpec::Synthetic(_) => "synthetic",
        }
    }
}

/// Options of the sources (each source reads the ones that concern it).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOptions {
    /// cifar100: use the 20 coarse labels instead of the 100 fine ones.
    pub coarse: bool,
    /// folder: output side length (shorter side resized, then center crop).
    pub size: u32,
    /// folder (list form): list file of the test split.
    pub test_list: Option<PathBuf>,
    /// folder (list form): directory the list's paths are relative to (default: the list's directory).
    pub image_root: Option<PathBuf>,
    /// synthetic: test images per class.
    pub test_per_class: u64,
    /// synthetic: the generator's seed (separate from the subset/manifest seed).
    pub synthetic_seed: u64,
    /// Most bytes of images a source may load into memory (train + test), checked before
    /// anything is allocated: synthetic counts, folder image counts x size, CIFAR file sizes.
    /// `lt-data build --max-source-bytes` raises it.
    pub max_source_bytes: u64,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            coarse: false,
            size: 32,
            test_list: None,
            image_root: None,
            test_per_class: 1000,
            synthetic_seed: 0,
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
        }
    }
}

/// Load a source into memory.
pub fn load(spec: &SourceSpec, opts: &SourceOptions, progress: &dyn Progress) -> Result<Dataset, DataError> {
    match spec {
        SourceSpec::Cifar10(dir) => cifar::load_plan(cifar::plan_cifar10(dir)?, opts.max_source_bytes, progress),
        SourceSpec::Cifar100(dir) => {
            cifar::load_plan(cifar::plan_cifar100(dir, opts.coarse)?, opts.max_source_bytes, progress)
        }
        SourceSpec::Cifar10Py(dir) => pickle::load_cifar10_py(dir, progress),
        SourceSpec::Synthetic(n) => {
            synthetic::check_size(*n, opts.test_per_class, opts.max_source_bytes)?;
            progress.stage("generate synthetic", 0);
            let d = synthetic::generate(*n, opts.test_per_class, opts.synthetic_seed);
            progress.finish();
            Ok(d)
        }
        #[cfg(feature = "folder")]
        SourceSpec::Folder(path) => folder::load(path, opts, progress),
        #[cfg(not(feature = "folder"))]
        SourceSpec::Folder(_) => Err(DataError::Invalid(
            "the folder source needs lt-data's `folder` feature (image decoding); rebuild with it".into(),
        )),
    }
}

/// Read at most `limit` bytes of `file` (opened from `path`): a regular file larger than that
/// is refused by its size before anything is read, a device or pipe once `limit` bytes came,
/// so /dev/zero or a huge sparse file never fills memory. `what` names the expected content
/// in the error, a [`DataError::Format`] naming `path` and the limit.
pub(crate) fn read_bounded(path: &Path, file: std::fs::File, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let too_big = || DataError::Format {
        path: path.into(),
        message: format!("larger than {}, the limit for {what}", show_bytes(limit)),
    };
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(len as usize + 1);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_bounded`] of a text file: an error naming `path` when it is not UTF-8, `lines`
/// saying what its lines should hold ("one index per line").
pub(crate) fn read_bounded_text(
    path: &Path,
    file: std::fs::File,
    limit: u64,
    what: &str,
    lines: &str,
) -> Result<String, DataError> {
    String::from_utf8(read_bounded(path, file, limit, what)?).map_err(|e| DataError::Format {
        path: path.into(),
        message: format!("not UTF-8 text (invalid byte at offset {}); expected {lines}", e.utf8_error().valid_up_to()),
    })
}

/// A byte count for messages: `64 MiB` when it is a whole number of MiB, else `N bytes`.
pub(crate) fn show_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) { format!("{} MiB", n >> 20) } else { format!("{n} bytes") }
}
