//! Parquet tables of a dataset directory, written and read with polars.
//!
//! Polars keeps strings and binaries as "view" arrays and would record them as such in the
//! Arrow schema it embeds in the footer; lt-data writes a classic schema (`Utf8`, `Binary`)
//! instead, so arrow-rs, pyarrow and DuckDB read plain string/binary columns.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use polars::prelude::*;
use polars_arrow::array::{BinaryViewArray, View};
use polars_buffer::Buffer;
use polars_parquet::write::schema_to_metadata_key;
use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::progress::Progress;
use crate::resample::Manifest;

/// Rows per row group of `samples.parquet` (about 25 MB of 32x32 images).
pub const SAMPLES_ROW_GROUP: usize = 8192;

/// A writer that hands 4 MiB chunks to two threads, one hashing (sha256) and one writing
/// the file, so Parquet encoding, hashing and I/O overlap.
struct ThreadedSink {
    buf: Vec<u8>,
    hash_tx: Option<SyncSender<Arc<Vec<u8>>>>,
    write_tx: Option<SyncSender<Arc<Vec<u8>>>>,
    hasher: Option<JoinHandle<String>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
}

const SINK_CHUNK: usize = 4 << 20;

impl ThreadedSink {
    fn new(mut file: File) -> Self {
        let (hash_tx, hash_rx) = sync_channel::<Arc<Vec<u8>>>(4);
        let (write_tx, write_rx) = sync_channel::<Arc<Vec<u8>>>(4);
        let hasher = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for chunk in hash_rx {
                h.update(&chunk[..]);
            }
            hex::encode(h.finalize())
        });
        let writer = std::thread::spawn(move || {
            let mut result = Ok(());
            for chunk in write_rx {
                if result.is_ok() {
                    result = file.write_all(&chunk);
                }
            }
            result
        });
        Self {
            buf: Vec::with_capacity(SINK_CHUNK),
            hash_tx: Some(hash_tx),
            write_tx: Some(write_tx),
            hasher: Some(hasher),
            writer: Some(writer),
        }
    }

    fn send(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        let chunk = Arc::new(chunk);
        let stopped = || std::io::Error::other("the writer thread stopped");
        self.hash_tx.as_ref().expect("sink open").send(chunk.clone()).map_err(|_| stopped())?;
        self.write_tx.as_ref().expect("sink open").send(chunk).map_err(|_| stopped())
    }

    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SINK_CHUNK));
        self.send(chunk)
    }

    /// Flush, stop the threads and return the sha256 of everything written.
    fn finish(mut self) -> std::io::Result<String> {
        self.send_buf()?;
        drop(self.hash_tx.take());
        drop(self.write_tx.take());
        let panicked = || std::io::Error::other("a writer thread panicked");
        self.writer.take().expect("writer").join().map_err(|_| panicked())??;
        self.hasher.take().expect("hasher").join().map_err(|_| panicked())
    }
}

impl Write for ThreadedSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > SINK_CHUNK {
            self.send_buf()?;
        }
        if data.len() >= SINK_CHUNK {
            self.send(data.to_vec())?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ThreadedSink {
    fn drop(&mut self) {
        drop(self.hash_tx.take());
        drop(self.write_tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Some(h) = self.hasher.take() {
            let _ = h.join();
        }
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
    let mut sink = ThreadedSink::new(file);
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
    sink.finish().map_err(|e| DataError::io(path, e))
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

/// Where a split's image bytes live: buffers of fixed-size records, the image at `prefix`
/// bytes into each record. Packed images are one buffer with `record` = image size, `prefix` 0;
/// CIFAR files mapped into memory keep their label bytes in front of each image.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// (buffer, number of records in it).
    pub buffers: Vec<(Buffer<u8>, usize)>,
    pub prefix: usize,
    pub record: usize,
}

impl ImageSource {
    /// Concatenated images (handed over without a copy).
    pub fn packed(images: Vec<u8>, image_len: usize) -> Self {
        let n = images.len().checked_div(image_len).unwrap_or(0);
        Self { buffers: vec![(Buffer::from(images), n)], prefix: 0, record: image_len }
    }

    fn len(&self) -> usize {
        self.buffers.iter().map(|b| b.1).sum()
    }
}

/// One split to write into `samples.parquet`.
#[derive(Debug)]
pub struct SplitRows<'a> {
    /// `train` or `test`.
    pub name: &'static str,
    pub labels: &'a [u16],
    pub images: ImageSource,
}

/// Image column of rows `start..end` of a split: views into the split's buffers (no copy).
fn image_column(src: &ImageSource, start: usize, end: usize, len: usize) -> Result<Column, PolarsError> {
    let mut views = Vec::with_capacity(end - start);
    let mut buffers = Vec::new();
    let mut first = 0usize; // global index of the current buffer's first record
    for (buf, n) in &src.buffers {
        let (lo, hi) = (start.max(first), end.min(first + n));
        if lo < hi {
            let (k0, k1) = (lo - first, hi - first);
            let slice = buf.clone().sliced(k0 * src.record..k1 * src.record);
            let bytes = slice.as_slice();
            let idx = buffers.len() as u32;
            for k in 0..k1 - k0 {
                let off = k * src.record + src.prefix;
                views.push(View::new_from_bytes(&bytes[off..off + len], idx, off as u32));
            }
            buffers.push(slice);
        }
        first += n;
    }
    let arr = BinaryViewArray::try_new(ArrowDataType::BinaryView, Buffer::from(views), Buffer::from(buffers), None)?;
    Ok(BinaryChunked::with_chunk("image".into(), arr).into_column())
}

/// Write `samples.parquet`: `split`, `index`, `label`, `image`, the splits in order, in row
/// groups of [`SAMPLES_ROW_GROUP`] rows. Images are stored uncompressed (pixels barely compress
/// and lt-train's reader supports only snappy).
pub fn write_samples(
    path: &Path,
    splits: Vec<SplitRows<'_>>,
    image_len: usize,
    progress: &dyn Progress,
) -> Result<String, DataError> {
    let schema = Schema::from_iter([
        Field::new("split".into(), DataType::String),
        Field::new("index".into(), DataType::UInt32),
        Field::new("label".into(), DataType::UInt16),
        Field::new("image".into(), DataType::Binary),
    ]);
    for s in &splits {
        let i = &s.images;
        if i.len() != s.labels.len() || i.prefix + image_len > i.record {
            return Err(write_err(
                path,
                format!("{} split: {} images of {} bytes for {} labels", s.name, i.len(), image_len, s.labels.len()),
            ));
        }
        if i.buffers.iter().any(|(b, n)| b.len() != n * i.record || b.len() > u32::MAX as usize) {
            return Err(write_err(
                path,
                format!("{} split: a buffer is not a whole number of records under 4 GiB", s.name),
            ));
        }
    }
    let total: u64 = splits.iter().map(|s| s.labels.len() as u64).sum();
    progress.stage("write samples.parquet", total);
    let splits: Vec<(&'static str, &[u16], ImageSource)> =
        splits.into_iter().map(|s| (s.name, s.labels, s.images)).collect();
    let mut batches = splits.iter().flat_map(|(name, labels, buf)| {
        (0..labels.len()).step_by(SAMPLES_ROW_GROUP).map(move |start| {
            let end = (start + SAMPLES_ROW_GROUP).min(labels.len());
            let n = end - start;
            let cols = vec![
                StringChunked::from_iter_values("split".into(), std::iter::repeat_n(*name, n)).into_column(),
                col_u32("index", (start as u32..end as u32).collect()),
                col_u16("label", labels[start..end].to_vec()),
                image_column(buf, start, end, image_len).map_err(|e| write_err(path, e))?,
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
