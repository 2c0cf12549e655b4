//! Parquet tables of a dataset directory, written and read with polars.
//!
//! Polars keeps strings and binaries as "view" arrays and would record them as such in the
//! Arrow schema it embeds in the footer; lt-data writes a classic schema (`Utf8`, `Binary`)
//! instead, so arrow-rs, pyarrow and DuckDB read plain string/binary columns.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use polars::prelude::*;
use polars_parquet::write::schema_to_metadata_key;
use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::progress::Progress;
use crate::resample::Manifest;
use crate::source::Dataset;

/// Rows per row group of `samples.parquet` (about 25 MB of 32x32 images).
pub const SAMPLES_ROW_GROUP: usize = 8192;

/// A writer that hashes everything passing through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Write { path: path.into(), message: e.to_string() }
}

/// The classic Arrow type recorded in the footer for a polars dtype.
fn classic(dtype: &DataType) -> ArrowDataType {
    match dtype {
        DataType::String => ArrowDataType::Utf8,
        DataType::Binary => ArrowDataType::Binary,
        DataType::UInt8 => ArrowDataType::UInt8,
        DataType::UInt16 => ArrowDataType::UInt16,
        DataType::UInt32 => ArrowDataType::UInt32,
        DataType::UInt64 => ArrowDataType::UInt64,
        DataType::Int32 => ArrowDataType::Int32,
        DataType::Int64 => ArrowDataType::Int64,
        DataType::Float64 => ArrowDataType::Float64,
        other => unreachable!("lt-data writes no {other:?} column"),
    }
}

/// Write DataFrame batches (all of the same schema) as one Parquet file; returns the sha256 of
/// the bytes written.
fn write_batches(
    path: &Path,
    schema: &Schema,
    batches: &mut dyn Iterator<Item = Result<DataFrame, DataError>>,
    compression: ParquetCompression,
) -> Result<String, DataError> {
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new() };
    let arrow_schema: ArrowSchema =
        schema.iter().map(|(name, dt)| (name.clone(), ArrowField::new(name.clone(), classic(dt), true))).collect();
    let kv = schema_to_metadata_key(&arrow_schema);
    let kv = KeyValueMetadata::from_static(vec![(kv.key, kv.value.unwrap_or_default())]);
    {
        let mut writer = ParquetWriter::new(&mut sink)
            .with_compression(compression)
            .with_key_value_metadata(Some(kv))
            .batched(schema)
            .map_err(|e| write_err(path, e))?;
        for df in batches {
            writer.write_batch(&df?).map_err(|e| write_err(path, e))?;
        }
        writer.finish().map_err(|e| write_err(path, e))?;
    }
    sink.flush().map_err(|e| DataError::io(path, e))?;
    let HashingWriter { inner, hasher } = sink;
    inner.into_inner().map_err(|e| DataError::io(path, e.into_error()))?;
    Ok(hex::encode(hasher.finalize()))
}

fn col_u32(name: &str, v: Vec<u32>) -> Column {
    UInt32Chunked::from_vec(name.into(), v).into_column()
}

fn col_u16(name: &str, v: Vec<u16>) -> Column {
    UInt16Chunked::from_vec(name.into(), v).into_column()
}

fn frame(path: &Path, columns: Vec<Column>) -> Result<DataFrame, DataError> {
    DataFrame::new_infer_height(columns).map_err(|e| write_err(path, e))
}

/// Write `samples.parquet`: `split`, `index`, `label`, `image`, train then test, in row groups
/// of [`SAMPLES_ROW_GROUP`] rows. Images are stored uncompressed (pixels barely compress and
/// lt-train's reader supports only snappy).
pub fn write_samples(path: &Path, data: &Dataset, progress: &dyn Progress) -> Result<String, DataError> {
    let schema = Schema::from_iter([
        Field::new("split".into(), DataType::String),
        Field::new("index".into(), DataType::UInt32),
        Field::new("label".into(), DataType::UInt16),
        Field::new("image".into(), DataType::Binary),
    ]);
    let len = data.image_len();
    let total = (data.train.len() + data.test.len()) as u64;
    progress.stage("write samples.parquet", total);
    let mut batches = [("train", &data.train), ("test", &data.test)].into_iter().flat_map(|(name, split)| {
        (0..split.len()).step_by(SAMPLES_ROW_GROUP).map(move |start| {
            let end = (start + SAMPLES_ROW_GROUP).min(split.len());
            let n = end - start;
            let images: Vec<&[u8]> = split.images[start * len..end * len].chunks_exact(len).collect();
            let cols = vec![
                StringChunked::from_iter_values("split".into(), std::iter::repeat_n(name, n)).into_column(),
                col_u32("index", (start as u32..end as u32).collect()),
                col_u16("label", split.labels[start..end].to_vec()),
                BinaryChunked::from_slice("image".into(), &images).into_column(),
            ];
            progress.advance(n as u64);
            frame(path, cols)
        })
    });
    let hash = write_batches(path, &schema, &mut batches, ParquetCompression::Uncompressed)?;
    progress.finish();
    Ok(hash)
}

/// Write `subset.parquet`: `index`, `label`, sorted by index.
pub fn write_subset(path: &Path, indices: &[u32], labels: &[u16]) -> Result<String, DataError> {
    let schema =
        Schema::from_iter([Field::new("index".into(), DataType::UInt32), Field::new("label".into(), DataType::UInt16)]);
    let df = frame(path, vec![col_u32("index", indices.to_vec()), col_u16("label", labels.to_vec())]);
    write_batches(path, &schema, &mut std::iter::once(df), ParquetCompression::Snappy)
}

/// Write `manifest-<strategy>.parquet`: `epoch`, `position`, `index`.
pub fn write_manifest(path: &Path, m: &Manifest) -> Result<String, DataError> {
    let schema = Schema::from_iter([
        Field::new("epoch".into(), DataType::UInt32),
        Field::new("position".into(), DataType::UInt32),
        Field::new("index".into(), DataType::UInt32),
    ]);
    let df = frame(
        path,
        vec![
            col_u32("epoch", m.epoch.clone()),
            col_u32("position", m.position.clone()),
            col_u32("index", m.index.clone()),
        ],
    );
    write_batches(path, &schema, &mut std::iter::once(df), ParquetCompression::Snappy)
}

/// Read a Parquet file into a polars DataFrame.
pub fn read_frame(path: &Path, columns: Option<&[&str]>) -> Result<DataFrame, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    ParquetReader::new(file)
        .with_columns(columns.map(|c| c.iter().map(|s| s.to_string()).collect()))
        .finish()
        .map_err(|e| DataError::Read { path: path.into(), message: e.to_string() })
}

/// A u32 column of a frame as a Vec.
pub fn u32_column(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<u32>, DataError> {
    let bad = |e: PolarsError| DataError::Read { path: path.into(), message: format!("column `{name}`: {e}") };
    let ca = df.column(name).map_err(bad)?.u32().map_err(bad)?;
    Ok(ca.into_no_null_iter().collect())
}

/// A u16 column of a frame as a Vec.
pub fn u16_column(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<u16>, DataError> {
    let bad = |e: PolarsError| DataError::Read { path: path.into(), message: format!("column `{name}`: {e}") };
    let ca = df.column(name).map_err(bad)?.u16().map_err(bad)?;
    Ok(ca.into_no_null_iter().collect())
}
