//! The output directories lt writes, one [`Owner`] each: the tool, the format named in the
//! marker, and how to recognise one written before markers existed.

use std::path::Path;

use crate::Owner;

/// `lt-data build`: a dataset directory (docs/FORMATS.md).
pub const DATASET: Owner = Owner { tool: "lt-data build", format: "lt-dataset", legacy: Some(legacy_dataset) };
/// `lt-train`: a run directory.
pub const RUN: Owner = Owner { tool: "lt-train", format: "lt-run", legacy: Some(legacy_run) };
/// `lt run`'s report step: the report directory of a pipeline.
pub const REPORT: Owner = Owner { tool: "lt run", format: "lt-report", legacy: Some(legacy_report) };
/// `lt-data fetch`: one extracted top-level directory of a downloaded archive. Extractions of
/// an older lt-data carry no marker and are not replaced: they are the user's data now.
pub const FETCHED: Owner = Owner { tool: "lt-data fetch", format: "lt-fetched-archive", legacy: None };

fn json_with_keys(path: &Path, keys: &[&str]) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    // dataset.json and run.json are a few hundred kilobytes at most.
    if !meta.is_file() || meta.len() > 256 << 20 {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else { return false };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&bytes) else { return false };
    keys.iter().all(|k| map.contains_key(*k))
}

/// dataset.json with lt-data's own keys.
fn legacy_dataset(dir: &Path) -> bool {
    json_with_keys(&dir.join("dataset.json"), &["format_version", "files", "subset_counts", "class_names"])
}

/// A finished run (run.json with lt-train's keys) or an interrupted one (a checkpoint with
/// lt-train's magic and nothing but lt-train's files).
fn legacy_run(dir: &Path) -> bool {
    if json_with_keys(&dir.join("run.json"), &["config", "final", "train_counts"]) {
        return true;
    }
    let magic = std::fs::File::open(dir.join("checkpoints/last.ckpt")).ok().and_then(|mut f| {
        let mut m = [0u8; 6];
        std::io::Read::read_exact(&mut f, &mut m).ok().map(|_| m)
    });
    magic.as_ref().is_some_and(|m| m == b"LTCKPT")
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().all(|e| {
                matches!(
                    e.file_name().to_str(),
                    Some("checkpoints" | "model.onnx" | "metrics.parquet" | "predictions.parquet" | "run.json")
                )
            })
        })
}

/// The report lt-report writes: summary.json with its keys next to index.html.
fn legacy_report(dir: &Path) -> bool {
    dir.join("index.html").is_file() && dir.join("summary.json").is_file()
}
