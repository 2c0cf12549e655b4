//! CIFAR-10 and CIFAR-100 binary formats.
//!
//! CIFAR-10: records of 1 label byte + 3072 image bytes (1024 R, 1024 G, 1024 B, row-major
//! 32x32) in `data_batch_1.bin`..`data_batch_5.bin` and `test_batch.bin`.
//! CIFAR-100: 1 coarse + 1 fine label byte + 3072 bytes, in `train.bin` and `test.bin`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{CIFAR10_NAMES, Dataset, Split};
use crate::error::DataError;
use crate::progress::Progress;

/// Bytes per CIFAR image.
pub const IMAGE_BYTES: usize = 3072;

/// Layout of a CIFAR binary record.
#[derive(Debug, Clone, Copy)]
pub struct RecordLayout {
    /// Label bytes before the image (1 for CIFAR-10, 2 for CIFAR-100).
    pub prefix: usize,
    /// Which of the prefix bytes is the label used.
    pub label_byte: usize,
    /// Number of classes of that label.
    pub classes: usize,
    /// Name of the label in error messages.
    pub field: &'static str,
}

impl RecordLayout {
    /// Bytes per record.
    pub fn record_len(&self) -> usize {
        self.prefix + IMAGE_BYTES
    }
}

/// The files, record layout and class names of a CIFAR binary directory.
#[derive(Debug, Clone)]
pub struct Plan {
    pub train: Vec<PathBuf>,
    pub test: Vec<PathBuf>,
    pub layout: RecordLayout,
    pub class_names: Vec<String>,
}

/// The plan of a CIFAR-10 binary directory.
pub fn plan_cifar10(dir: &Path) -> Result<Plan, DataError> {
    Ok(Plan {
        train: (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(),
        test: vec![dir.join("test_batch.bin")],
        layout: RecordLayout { prefix: 1, label_byte: 0, classes: 10, field: "label" },
        class_names: read_names(&dir.join("batches.meta.txt"), 10)?
            .unwrap_or_else(|| CIFAR10_NAMES.iter().map(|s| s.to_string()).collect()),
    })
}

/// The plan of a CIFAR-100 binary directory (fine labels, or the 20 coarse ones).
pub fn plan_cifar100(dir: &Path, coarse: bool) -> Result<Plan, DataError> {
    let layout = if coarse {
        RecordLayout { prefix: 2, label_byte: 0, classes: 20, field: "coarse label" }
    } else {
        RecordLayout { prefix: 2, label_byte: 1, classes: 100, field: "fine label" }
    };
    let names_file = dir.join(if coarse { "coarse_label_names.txt" } else { "fine_label_names.txt" });
    let class_names = read_names(&names_file, layout.classes)?
        .unwrap_or_else(|| (0..layout.classes).map(|i| format!("class_{i:03}")).collect());
    Ok(Plan { train: vec![dir.join("train.bin")], test: vec![dir.join("test.bin")], layout, class_names })
}

/// Read CIFAR-10 binary from `dir` (at most [`super::DEFAULT_MAX_SOURCE_BYTES`] of files).
pub fn load_cifar10(dir: &Path, progress: &dyn Progress) -> Result<Dataset, DataError> {
    load_plan(plan_cifar10(dir)?, super::DEFAULT_MAX_SOURCE_BYTES, progress)
}

/// Read CIFAR-100 binary from `dir` (fine labels, or the 20 coarse ones).
pub fn load_cifar100(dir: &Path, coarse: bool, progress: &dyn Progress) -> Result<Dataset, DataError> {
    load_plan(plan_cifar100(dir, coarse)?, super::DEFAULT_MAX_SOURCE_BYTES, progress)
}

/// Read the files of a plan into memory, refusing more than `max_bytes` of them before
/// allocating (CIFAR-10 is 184 MB; a larger total means other files under these names).
pub fn load_plan(plan: Plan, max_bytes: u64, progress: &dyn Progress) -> Result<Dataset, DataError> {
    let (train, test) = read_splits(&plan.train, &plan.test, plan.layout, max_bytes, progress)?;
    Ok(Dataset { class_names: plan.class_names, image_shape: [3, 32, 32], train, test })
}

/// Sizes of record files, checked to be whole numbers of records.
pub fn check_sizes(files: &[PathBuf], layout: RecordLayout) -> Result<Vec<u64>, DataError> {
    files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    DataError::Missing {
                        path: p.clone(),
                        hint:
                            "download the data set with `lt-data fetch` or point --source at the directory holding it"
                                .into(),
                    }
                } else {
                    DataError::io(p, e)
                }
            })?;
            let size = meta.len();
            if size == 0 {
                return Err(DataError::Format {
                    path: p.clone(),
                    message: "the file is empty (0 bytes): a truncated download or extraction; delete it and \
                              fetch the data set again with `lt-data fetch`"
                        .into(),
                });
            }
            if size % layout.record_len() as u64 != 0 {
                return Err(DataError::RecordSize { path: p.clone(), size, record_size: layout.record_len() });
            }
            Ok(size)
        })
        .collect()
}

/// Labels of records held in memory (`bytes` = whole records of `path`), checked.
pub fn record_labels(path: &Path, bytes: &[u8], layout: RecordLayout, out: &mut Vec<u16>) -> Result<(), DataError> {
    for (r, rec) in bytes.chunks_exact(layout.record_len()).enumerate() {
        let value = rec[layout.label_byte];
        if value as usize >= layout.classes {
            return Err(DataError::LabelRange {
                path: path.into(),
                record: r,
                field: layout.field,
                value: u64::from(value),
                classes: layout.classes,
            });
        }
        out.push(u16::from(value));
    }
    Ok(())
}

/// Class names, one per non-empty line; `Ok(None)` when the file does not exist.
fn read_names(path: &Path, classes: usize) -> Result<Option<Vec<String>>, DataError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(path, e)),
    };
    let text = super::read_bounded_text(path, file, 1 << 20, "a file of class names", "one class name per line")?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != classes {
        return Err(DataError::Format {
            path: path.into(),
            message: format!("{} class names, expected {classes} (one per line); fix or remove the file", names.len()),
        });
    }
    Ok(Some(names))
}

fn read_splits(
    train: &[PathBuf],
    test: &[PathBuf],
    layout: RecordLayout,
    max_bytes: u64,
    progress: &dyn Progress,
) -> Result<(Split, Split), DataError> {
    let train_sizes = check_sizes(train, layout)?;
    let test_sizes = check_sizes(test, layout)?;
    let total: u64 = train_sizes.iter().chain(&test_sizes).fold(0u64, |a, &b| a.saturating_add(b));
    if total > max_bytes {
        let (path, size) =
            train.iter().chain(test).zip(train_sizes.iter().chain(&test_sizes)).max_by_key(|p| p.1).expect("files");
        return Err(DataError::Format {
            path: path.clone(),
            message: format!(
                "{size} bytes; the source's files add up to {total} bytes, over the limit of {max_bytes} \
                 (--max-source-bytes; CIFAR-10 and CIFAR-100 are about 180 MB)"
            ),
        });
    }
    progress.stage("read source", total);
    let (a, b) = rayon::join(
        || read_records(train, &train_sizes, layout, progress),
        || read_records(test, &test_sizes, layout, progress),
    );
    progress.finish();
    Ok((a?, b?))
}

/// Read files of records into one buffer (in parallel), check the labels, then drop the label
/// bytes in place so the buffer becomes the concatenated images.
pub fn read_records(
    files: &[PathBuf],
    sizes: &[u64],
    layout: RecordLayout,
    progress: &dyn Progress,
) -> Result<Split, DataError> {
    let rec = layout.record_len();
    let total: usize = sizes.iter().map(|&s| s as usize).sum();
    let mut buf = vec![0u8; total];
    let mut slices = Vec::with_capacity(files.len());
    let mut rest: &mut [u8] = &mut buf;
    for (path, &size) in files.iter().zip(sizes) {
        let (head, tail) = rest.split_at_mut(size as usize);
        slices.push((path, head));
        rest = tail;
    }
    slices.into_par_iter().try_for_each(|(path, slice)| -> Result<(), DataError> {
        let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
        for chunk in slice.chunks_mut(8 << 20) {
            f.read_exact(chunk).map_err(|e| DataError::io(path, e))?;
            progress.advance(chunk.len() as u64);
        }
        // The file must not have grown since we measured it.
        let mut probe = [0u8; 1];
        if f.read(&mut probe).map_err(|e| DataError::io(path, e))? != 0 {
            return Err(DataError::Format { path: path.clone(), message: "the file changed while being read".into() });
        }
        Ok(())
    })?;
    let n = total / rec;
    let mut labels = Vec::with_capacity(n);
    let mut offset = 0usize;
    for (path, &size) in files.iter().zip(sizes) {
        record_labels(path, &buf[offset..offset + size as usize], layout, &mut labels)?;
        offset += size as usize;
    }
    for r in 0..n {
        let src = r * rec + layout.prefix;
        buf.copy_within(src..src + IMAGE_BYTES, r * IMAGE_BYTES);
    }
    buf.truncate(n * IMAGE_BYTES);
    buf.shrink_to_fit();
    Ok(Split { labels, images: buf })
}
