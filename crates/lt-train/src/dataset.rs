//! Reading a dataset directory written by `lt-data build` (docs/FORMATS.md) with arrow-rs.
//!
//! All images of both splits are held in memory as the raw bytes of the Parquet `image`
//! column (channel-planar u8): CIFAR's 60k images are 184 MB, and the loader converts only
//! the batch at hand to f32.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, BinaryArray, LargeBinaryArray, RecordBatch, StringArray, StringViewArray, UInt16Array, UInt32Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: {message}; rebuild the dataset with `lt-data build`")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{dir}: the dataset has no manifest `{strategy}` (it has: {available}); rebuild it with `lt-data build --resample {strategy}`"
    )]
    NoManifest { dir: PathBuf, strategy: String, available: String },
}

/// The parts of `dataset.json` lt-train uses; other fields are kept verbatim in `raw`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatasetInfo {
    pub class_names: Vec<String>,
    pub image_shape: [usize; 3],
    pub subset_counts: Vec<u64>,
    #[serde(default)]
    pub manifests: BTreeMap<String, serde_json::Value>,
}

/// One split's images and labels, addressed by the split's `index` column: lt-data's own
/// type (from its pure, polars-free part), so both crates hold a split the same way.
pub use lt_data::source::Split;

/// A loaded dataset directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub info: DatasetInfo,
    /// sha256 of `dataset.json`, which itself holds the hash of every file: one hash for all.
    pub content_hash: String,
    pub train: Split,
    pub test: Split,
    /// Indices into `train` of the long-tailed training subset, ascending.
    pub subset: Vec<u32>,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.info.class_names.len()
    }

    /// Bytes per image (C·H·W).
    pub fn image_len(&self) -> usize {
        self.info.image_shape.iter().product()
    }

    /// Reads `dataset.json`, `samples.parquet` and `subset.parquet`.
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let json_path = dir.join("dataset.json");
        let json = std::fs::read(&json_path).map_err(|e| DatasetError::Io {
            path: json_path.clone(),
            message: format!("{e}; is this a directory written by `lt-data build`?"),
        })?;
        let info: DatasetInfo = serde_json::from_slice(&json)
            .map_err(|e| DatasetError::Invalid { path: json_path.clone(), message: e.to_string() })?;
        if info.class_names.is_empty() || info.subset_counts.len() != info.class_names.len() {
            return Err(DatasetError::Invalid {
                path: json_path,
                message: format!(
                    "class_names has {} entries but subset_counts has {}",
                    info.class_names.len(),
                    info.subset_counts.len()
                ),
            });
        }
        let content_hash = hex::encode(Sha256::digest(&json));
        let image_len: usize = info.image_shape.iter().product();
        let num_classes = info.class_names.len();
        let (train, test) = read_samples(&dir.join("samples.parquet"), image_len, num_classes)?;
        let subset = read_subset(&dir.join("subset.parquet"), train.len())?;
        Ok(Dataset { dir: dir.to_path_buf(), info, content_hash, train, test, subset })
    }

    /// The training indices of every epoch of a resampled manifest, `epochs[e]` in position order.
    pub fn manifest(&self, strategy: &str) -> Result<Vec<Vec<u32>>, DatasetError> {
        let path = self.dir.join(format!("manifest-{strategy}.parquet"));
        if !path.is_file() {
            let available = self.info.manifests.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(DatasetError::NoManifest { dir: self.dir.clone(), strategy: strategy.to_string(), available });
        }
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        for batch in read_batches(&path)? {
            let epoch = column::<UInt32Array>(&batch, "epoch", &path)?;
            let position = column::<UInt32Array>(&batch, "position", &path)?;
            let index = column::<UInt32Array>(&batch, "index", &path)?;
            for r in 0..batch.num_rows() {
                rows.push((epoch.value(r), position.value(r), index.value(r)));
            }
        }
        rows.sort_unstable();
        let epochs = rows.iter().map(|r| r.0).max().map_or(0, |m| m as usize + 1);
        let mut out = vec![Vec::new(); epochs];
        for (epoch, _, index) in rows {
            if index as usize >= self.train.len() {
                return Err(DatasetError::Invalid {
                    path: path.clone(),
                    message: format!("index {index} is outside the train split ({} images)", self.train.len()),
                });
            }
            out[epoch as usize].push(index);
        }
        Ok(out)
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), message: e.to_string() }
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, DatasetError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| io_err(path, e))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| io_err(path, e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| io_err(path, e))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T, DatasetError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| DatasetError::Invalid { path: path.to_path_buf(), message: format!("no column `{name}`") })?;
    col.as_any().downcast_ref::<T>().ok_or_else(|| DatasetError::Invalid {
        path: path.to_path_buf(),
        message: format!("column `{name}` has type {}, expected {}", col.data_type(), std::any::type_name::<T>()),
    })
}

/// The split column as strings, whichever string layout the writer chose.
fn split_values(batch: &RecordBatch, path: &Path) -> Result<Vec<String>, DatasetError> {
    let col = batch
        .column_by_name("split")
        .ok_or_else(|| DatasetError::Invalid { path: path.to_path_buf(), message: "no column `split`".into() })?;
    if let Some(a) = col.as_any().downcast_ref::<StringArray>() {
        return Ok((0..a.len()).map(|i| a.value(i).to_string()).collect());
    }
    if let Some(a) = col.as_any().downcast_ref::<StringViewArray>() {
        return Ok((0..a.len()).map(|i| a.value(i).to_string()).collect());
    }
    if let Some(dict) = col.as_any().downcast_ref::<arrow::array::DictionaryArray<arrow::datatypes::UInt32Type>>() {
        let values = dict.values().as_any().downcast_ref::<StringArray>();
        if let Some(values) = values {
            return Ok(dict.keys().iter().map(|k| values.value(k.unwrap_or(0) as usize).to_string()).collect());
        }
    }
    Err(DatasetError::Invalid {
        path: path.to_path_buf(),
        message: format!("column `split` has type {}", col.data_type()),
    })
}

fn image_values(batch: &RecordBatch, path: &Path) -> Result<Vec<Vec<u8>>, DatasetError> {
    let col = batch
        .column_by_name("image")
        .ok_or_else(|| DatasetError::Invalid { path: path.to_path_buf(), message: "no column `image`".into() })?;
    if let Some(a) = col.as_any().downcast_ref::<BinaryArray>() {
        return Ok((0..a.len()).map(|i| a.value(i).to_vec()).collect());
    }
    if let Some(a) = col.as_any().downcast_ref::<LargeBinaryArray>() {
        return Ok((0..a.len()).map(|i| a.value(i).to_vec()).collect());
    }
    if let Some(a) = col.as_any().downcast_ref::<arrow::array::BinaryViewArray>() {
        return Ok((0..a.len()).map(|i| a.value(i).to_vec()).collect());
    }
    Err(DatasetError::Invalid {
        path: path.to_path_buf(),
        message: format!("column `image` has type {}", col.data_type()),
    })
}

fn read_samples(path: &Path, image_len: usize, num_classes: usize) -> Result<(Split, Split), DatasetError> {
    // (index, label, bytes) per split, placed by index afterwards so row order does not matter.
    let mut rows: [Vec<(u32, u16, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    for batch in read_batches(path)? {
        let splits = split_values(&batch, path)?;
        let index = column::<UInt32Array>(&batch, "index", path)?;
        let label = column::<UInt16Array>(&batch, "label", path)?;
        let images = image_values(&batch, path)?;
        for (r, image) in images.into_iter().enumerate() {
            let which = match splits[r].as_str() {
                "train" => 0,
                "test" => 1,
                other => {
                    return Err(DatasetError::Invalid {
                        path: path.to_path_buf(),
                        message: format!("row {r}: split `{other}` is neither `train` nor `test`"),
                    });
                }
            };
            if image.len() != image_len {
                return Err(DatasetError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "{} image {}: {} bytes, expected {image_len}",
                        splits[r],
                        index.value(r),
                        image.len()
                    ),
                });
            }
            if label.value(r) as usize >= num_classes {
                return Err(DatasetError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "{} image {}: label {} but only {num_classes} classes",
                        splits[r],
                        index.value(r),
                        label.value(r)
                    ),
                });
            }
            rows[which].push((index.value(r), label.value(r), image));
        }
    }
    let [train, test] = rows.map(|mut rows| {
        rows.sort_unstable_by_key(|r| r.0);
        rows
    });
    Ok((to_split(path, "train", train, image_len)?, to_split(path, "test", test, image_len)?))
}

fn to_split(path: &Path, name: &str, rows: Vec<(u32, u16, Vec<u8>)>, image_len: usize) -> Result<Split, DatasetError> {
    let mut split =
        Split { labels: Vec::with_capacity(rows.len()), images: Vec::with_capacity(rows.len() * image_len) };
    for (i, (index, label, image)) in rows.into_iter().enumerate() {
        if index as usize != i {
            return Err(DatasetError::Invalid {
                path: path.to_path_buf(),
                message: format!("{name} split: indices are not 0..n (found {index} at position {i})"),
            });
        }
        split.labels.push(label);
        split.images.extend_from_slice(&image);
    }
    Ok(split)
}

fn read_subset(path: &Path, train_len: usize) -> Result<Vec<u32>, DatasetError> {
    let mut subset = Vec::new();
    for batch in read_batches(path)? {
        let index = column::<UInt32Array>(&batch, "index", path)?;
        subset.extend(index.values().iter().copied());
    }
    subset.sort_unstable();
    if let Some(&bad) = subset.iter().find(|&&i| i as usize >= train_len) {
        return Err(DatasetError::Invalid {
            path: path.to_path_buf(),
            message: format!("subset index {bad} is outside the train split ({train_len} images)"),
        });
    }
    Ok(subset)
}
