//! Image folders: `DIR/<class>/*.{png,jpg,jpeg}` (optionally `DIR/train/<class>` and
//! `DIR/test/<class>`), or a list file of `path label` lines (ImageNet-LT style). Images are
//! decoded, resized so the shorter side is `size`, center-cropped to size x size, and stored
//! channel-planar.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use super::{Dataset, SourceOptions, Split};
use crate::error::DataError;
use crate::progress::Progress;

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        out.push(e.map_err(|e| DataError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Files of a class-per-directory tree, with labels from `class_names`.
fn scan_tree(dir: &Path, class_names: &[String]) -> Result<Vec<(PathBuf, u16)>, DataError> {
    let mut files = Vec::new();
    for entry in sorted_entries(dir)? {
        if !entry.is_dir() {
            continue;
        }
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let label = class_names.iter().position(|c| *c == name).ok_or_else(|| DataError::Format {
            path: entry.clone(),
            message: format!("class directory `{name}` is not among the training classes {class_names:?}"),
        })?;
        for f in sorted_entries(&entry)? {
            if f.is_file() && is_image(&f) {
                files.push((f, label as u16));
            }
        }
    }
    Ok(files)
}

fn class_dirs(dir: &Path) -> Result<Vec<String>, DataError> {
    let names: Vec<String> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    if names.is_empty() {
        return Err(DataError::Format {
            path: dir.into(),
            message: "no class directories; expected DIR/<class>/*.png|jpg".into(),
        });
    }
    if names.len() > usize::from(u16::MAX) {
        return Err(DataError::Format { path: dir.into(), message: format!("{} classes; at most 65535", names.len()) });
    }
    Ok(names)
}

fn read_list(list: &Path, root: &Path) -> Result<Vec<(PathBuf, u16)>, DataError> {
    let text = std::fs::read_to_string(list).map_err(|e| DataError::io(list, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let bad = |message: String| DataError::Line { path: list.into(), line: i + 1, message };
        let (p, l) = t.rsplit_once(char::is_whitespace).ok_or_else(|| bad("expected `path label`".into()))?;
        let label: u16 = l.trim().parse().map_err(|_| bad(format!("label `{l}` is not an integer in 0..65535")))?;
        out.push((root.join(p.trim()), label));
    }
    if out.is_empty() {
        return Err(DataError::Format { path: list.into(), message: "the list has no `path label` lines".into() });
    }
    Ok(out)
}

/// Decode one image and return it resized, center-cropped and channel-planar.
pub fn load_image(path: &Path, size: u32) -> Result<Vec<u8>, DataError> {
    let img = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::Image { path: path.into(), message: e.to_string() })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(DataError::Image { path: path.into(), message: "empty image".into() });
    }
    let (nw, nh) = if w <= h {
        (size, ((u64::from(h) * u64::from(size)).div_ceil(u64::from(w))) as u32)
    } else {
        (((u64::from(w) * u64::from(size)).div_ceil(u64::from(h))) as u32, size)
    };
    let resized = if (nw, nh) == (w, h) { img } else { image::imageops::resize(&img, nw, nh, FilterType::Triangle) };
    let x0 = (nw - size) / 2;
    let y0 = (nh - size) / 2;
    let s = size as usize;
    let mut out = vec![0u8; 3 * s * s];
    for y in 0..s {
        for x in 0..s {
            let p = resized.get_pixel(x0 + x as u32, y0 + y as u32);
            for c in 0..3 {
                out[c * s * s + y * s + x] = p[c];
            }
        }
    }
    Ok(out)
}

fn decode_all(files: &[(PathBuf, u16)], size: u32, progress: &dyn Progress) -> Result<Split, DataError> {
    let images: Vec<Vec<u8>> = files
        .par_iter()
        .map(|(p, _)| {
            let r = load_image(p, size);
            progress.advance(1);
            r
        })
        .collect::<Result<_, _>>()?;
    Ok(Split { labels: files.iter().map(|f| f.1).collect(), images: images.concat() })
}

/// Load a folder source (`path` is a directory or a list file).
pub fn load(path: &Path, opts: &SourceOptions, progress: &dyn Progress) -> Result<Dataset, DataError> {
    if opts.size == 0 {
        return Err(DataError::Invalid("--size must be at least 1".into()));
    }
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    let (class_names, train_files, test_files) = if meta.is_dir() {
        let (train_dir, test_dir) = (path.join("train"), path.join("test"));
        if train_dir.is_dir() && test_dir.is_dir() {
            let names = class_dirs(&train_dir)?;
            let tr = scan_tree(&train_dir, &names)?;
            let te = scan_tree(&test_dir, &names)?;
            (names, tr, te)
        } else {
            let names = class_dirs(path)?;
            let tr = scan_tree(path, &names)?;
            (names, tr, Vec::new())
        }
    } else {
        let root = opts.image_root.clone().unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf());
        let tr = read_list(path, &root)?;
        let te = match &opts.test_list {
            Some(l) => read_list(l, &root)?,
            None => Vec::new(),
        };
        let classes = tr.iter().chain(&te).map(|f| f.1 as usize).max().unwrap_or(0) + 1;
        ((0..classes).map(|c| c.to_string()).collect(), tr, te)
    };
    if train_files.is_empty() {
        return Err(DataError::Format { path: path.into(), message: "no training images (.png, .jpg, .jpeg)".into() });
    }
    progress.stage("decode images", (train_files.len() + test_files.len()) as u64);
    let train = decode_all(&train_files, opts.size, progress)?;
    let test = decode_all(&test_files, opts.size, progress)?;
    progress.finish();
    let s = opts.size as usize;
    Ok(Dataset { class_names, image_shape: [3, s, s], train, test })
}
