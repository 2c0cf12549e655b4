//! `lt-data inspect`: per-class counts of a dataset directory, read back from its Parquet files.

use std::fmt::Write as _;
use std::path::Path;

use sha2::Sha256;

use crate::error::DataError;
use crate::meta::DatasetMeta;
use crate::parquet::{read_frame, u16_column, u32_column};

/// Per-class counts of a dataset directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub meta: DatasetMeta,
    /// Subset counts recounted from `subset.parquet`.
    pub subset_counts: Vec<u64>,
    /// Validation counts recounted from the validation split's file, when the dataset has one.
    pub validation_counts: Option<Vec<u64>>,
    /// strategy -> (epochs, visits per class over all epochs), from the manifest files.
    pub manifests: Vec<(String, u32, Vec<u64>)>,
    /// file name -> whether its sha256 matches dataset.json.
    pub files_ok: Vec<(String, bool)>,
}

/// sha256 (hex) of a file.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    crate::hash::hex_digest_of_file::<Sha256>(path)
}

/// Read a dataset directory back.
pub fn inspect(dir: &Path) -> Result<Inspection, DataError> {
    let meta = DatasetMeta::read(dir)?;
    let c = meta.class_names.len();
    let subset_path = dir.join("subset.parquet");
    let subset = read_frame(&subset_path, None)?;
    let idx = u32_column(&subset, &subset_path, "index")?;
    let labels = u16_column(&subset, &subset_path, "label")?;
    let mut subset_counts = vec![0u64; c];
    let mut label_of = std::collections::HashMap::with_capacity(idx.len());
    for (&i, &l) in idx.iter().zip(&labels) {
        if l as usize >= c {
            return Err(DataError::Read { path: subset_path, message: format!("label {l} outside 0..{c}") });
        }
        subset_counts[l as usize] += 1;
        label_of.insert(i, l);
    }
    let validation_counts = match &meta.validation {
        Some(v) => {
            let path = dir.join(&v.file);
            let labels = u16_column(&read_frame(&path, Some(&["label"]))?, &path, "label")?;
            if let Some(l) = labels.iter().find(|&&l| l as usize >= c) {
                return Err(DataError::Read { path, message: format!("label {l} outside 0..{c}") });
            }
            Some(crate::profile::count_labels(&labels, c))
        }
        None => None,
    };
    let mut manifests = Vec::new();
    for (name, m) in &meta.manifests {
        let path = dir.join(&m.file);
        let df = read_frame(&path, Some(&["index"]))?;
        let mut counts = vec![0u64; c];
        for i in u32_column(&df, &path, "index")? {
            let l = label_of.get(&i).ok_or_else(|| DataError::Read {
                path: path.clone(),
                message: format!("index {i} is not in subset.parquet; rebuild the directory"),
            })?;
            counts[*l as usize] += 1;
        }
        manifests.push((name.clone(), m.epochs, counts));
    }
    let files_ok = meta
        .files
        .iter()
        .map(|(name, hash)| Ok((name.clone(), sha256_file(&dir.join(name))? == *hash)))
        .collect::<Result<Vec<_>, DataError>>()?;
    Ok(Inspection { meta, subset_counts, validation_counts, manifests, files_ok })
}

fn bar(value: f64, max: f64, width: usize) -> String {
    if max <= 0.0 {
        return String::new();
    }
    let eighths = (value / max * width as f64 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTIAL[eighths % 8]);
    s
}

/// Render the per-class table with bars.
pub fn render(ins: &Inspection, bar_width: usize) -> String {
    let m = &ins.meta;
    let mut out = String::new();
    let src = m.source.get("spec").and_then(|s| s.as_str()).unwrap_or("?");
    let prof = m.profile.get("kind").and_then(|s| s.as_str()).unwrap_or("?");
    let _ = writeln!(out, "source {src}   profile {prof}   seed {}   image {:?}", m.seed, m.image_shape);
    let total_src: u64 = m.source_counts.iter().sum();
    let total_sub: u64 = ins.subset_counts.iter().sum();
    let val = match &ins.validation_counts {
        Some(v) => format!(" + validation {} (held out before the cut)", v.iter().sum::<u64>()),
        None => String::new(),
    };
    let _ = writeln!(out, "train {total_src} -> subset {total_sub}{val}   test {}", m.test_counts.iter().sum::<u64>());
    let name_w = m.class_names.iter().map(|n| n.chars().count()).max().unwrap_or(4).clamp(4, 20);
    let mut header = format!("{:>5} {:<name_w$} {:>7} {:>7} {:>6}", "label", "name", "source", "subset", "test");
    if ins.validation_counts.is_some() {
        header.push_str(&format!(" {:>5}", "val"));
    }
    for (s, _, _) in &ins.manifests {
        let _ = write!(header, " {:>12}", truncate(s, 12));
    }
    let _ = writeln!(out, "{header}   subset");
    let max_sub = ins.subset_counts.iter().copied().max().unwrap_or(0) as f64;
    for (c, name) in m.class_names.iter().enumerate() {
        let mut line = format!(
            "{c:>5} {:<name_w$} {:>7} {:>7} {:>6}",
            truncate(name, name_w),
            m.source_counts.get(c).copied().unwrap_or(0),
            ins.subset_counts[c],
            m.test_counts.get(c).copied().unwrap_or(0)
        );
        if let Some(v) = &ins.validation_counts {
            let _ = write!(line, " {:>5}", v[c]);
        }
        for (_, epochs, counts) in &ins.manifests {
            let _ = write!(line, " {:>12.1}", counts[c] as f64 / f64::from((*epochs).max(1)));
        }
        let _ = writeln!(out, "{line}   {}", bar(ins.subset_counts[c] as f64, max_sub, bar_width));
    }
    if !ins.manifests.is_empty() {
        let _ = writeln!(out, "(manifest columns: visits per epoch, averaged over the epochs)");
    }
    for (s, epochs, counts) in &ins.manifests {
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        let _ = writeln!(out, "\nmanifest-{s} ({epochs} epochs)");
        for (c, name) in m.class_names.iter().enumerate() {
            let per = counts[c] as f64 / f64::from((*epochs).max(1));
            let _ = writeln!(
                out,
                "{c:>5} {:<name_w$} {per:>10.1} {}",
                truncate(name, name_w),
                bar(counts[c] as f64, max, bar_width)
            );
        }
    }
    let bad: Vec<&str> = ins.files_ok.iter().filter(|f| !f.1).map(|f| f.0.as_str()).collect();
    if bad.is_empty() {
        let _ = writeln!(out, "\nfiles: {} sha256 match dataset.json", ins.files_ok.len());
    } else {
        let _ = writeln!(out, "\nfiles CHANGED since build (sha256 mismatch): {}", bad.join(", "));
    }
    out
}

fn truncate(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}
