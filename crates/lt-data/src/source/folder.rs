//! Image folders: `DIR/<class>/*.{png,jpg,jpeg}` (optionally `DIR/train/<class>` and
//! `DIR/test/<class>`), or a list file of `path label` lines (ImageNet-LT style). Images are
//! decoded, resized so the shorter side is `size`, center-cropped to size x size, and stored
//! channel-planar.
//!
//! Bounds, checked before anything large is allocated: `--size` at most [`MAX_SIZE`], images
//! of at most [`MAX_IMAGE_PIXELS`] (from the file's header, before decoding), list files of at
//! most [`MAX_LIST_BYTES`], and (train + test images) x 3 x size^2 within
//! `SourceOptions::max_source_bytes`. List labels must number the classes densely: every class
//! 0..C-1 has a training image.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use super::{Dataset, SourceOptions, Split};
use crate::error::DataError;
use crate::progress::Progress;

/// Largest `--size` (output side, pixels): a 4096x4096 RGB image is 48 MiB.
pub const MAX_SIZE: u32 = 4096;
/// Largest input image, in pixels (width x height from its header): 50 megapixels, 150 MB
/// decoded. Larger images are refused before decoding; downscale them first.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;
/// Largest intermediate of the resize (the shorter side scaled to `size`): an image whose
/// aspect ratio would make it larger is refused rather than filling memory.
pub const MAX_RESIZED_PIXELS: u64 = 1 << 26;
/// Largest list file read (ImageNet-LT's train list is about 6 MB).
pub const MAX_LIST_BYTES: u64 = 256 << 20;

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

/// One listed image: its path, label and the list line it came from (1-based).
struct Listed {
    path: PathBuf,
    label: u16,
    line: usize,
}

fn read_list(list: &Path, root: &Path) -> Result<Vec<Listed>, DataError> {
    let file = std::fs::File::open(list).map_err(|e| DataError::io(list, e))?;
    let what = "a list file of `path label` lines";
    let text = super::read_bounded_text(list, file, MAX_LIST_BYTES, what, "`path label` lines")?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let bad = |message: String| DataError::Line { path: list.into(), line: i + 1, message };
        let (p, l) = t.rsplit_once(char::is_whitespace).ok_or_else(|| bad("expected `path label`".into()))?;
        let label: u16 = l.trim().parse().map_err(|_| bad(format!("label `{l}` is not an integer in 0..65535")))?;
        out.push(Listed { path: root.join(p.trim()), label, line: i + 1 });
    }
    if out.is_empty() {
        return Err(DataError::Format { path: list.into(), message: "the list has no `path label` lines".into() });
    }
    Ok(out)
}

/// The class count of list-file labels: max label + 1, refused unless every class
/// 0..C-1 has a training image (a stray large label would otherwise create thousands of
/// empty classes), and every test label is one of them.
fn list_classes(
    train_list: &Path,
    train: &[Listed],
    test_list: Option<&Path>,
    test: &[Listed],
) -> Result<usize, DataError> {
    let top = train.iter().max_by_key(|f| (f.label, std::cmp::Reverse(f.line))).expect("a non-empty list");
    let classes = usize::from(top.label) + 1;
    let mut present = vec![false; classes];
    for f in train {
        present[usize::from(f.label)] = true;
    }
    let missing: Vec<usize> = (0..classes).filter(|&c| !present[c]).collect();
    if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
        let which = if missing.len() == 1 {
            format!("class {first} has")
        } else {
            format!("{} classes ({first} to {last}) have", missing.len())
        };
        return Err(DataError::Line {
            path: train_list.into(),
            line: top.line,
            message: format!(
                "label {} makes {classes} classes but {which} no training image; labels must number the classes \
                 0..C-1 with at least one training image each (renumber the labels)",
                top.label
            ),
        });
    }
    if let (Some(list), Some(f)) = (test_list, test.iter().find(|f| usize::from(f.label) >= classes)) {
        return Err(DataError::Line {
            path: list.into(),
            line: f.line,
            message: format!(
                "label {} is not a training class: the training list has {classes} classes (0..{})",
                f.label,
                classes - 1
            ),
        });
    }
    Ok(classes)
}

/// Decode one image and return it resized, center-cropped and channel-planar.
///
/// The header's dimensions are checked before decoding: at most [`MAX_IMAGE_PIXELS`], and a
/// resize intermediate of at most [`MAX_RESIZED_PIXELS`].
pub fn load_image(path: &Path, size: u32) -> Result<Vec<u8>, DataError> {
    let mut out = vec![0u8; 3 * size as usize * size as usize];
    load_image_into(path, size, &mut out)?;
    Ok(out)
}

/// [`load_image`] into `out` (3 x size x size bytes).
fn load_image_into(path: &Path, size: u32, out: &mut [u8]) -> Result<(), DataError> {
    let image_err = |message: String| DataError::Image { path: path.into(), message };
    let decoder = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .into_decoder()
        .map_err(|e| image_err(e.to_string()))?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if w == 0 || h == 0 {
        return Err(image_err("empty image".into()));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(image_err(format!(
            "{w}x{h} is {pixels} pixels, over the limit of {MAX_IMAGE_PIXELS}; downscale it first"
        )));
    }
    let (nw, nh) = if w <= h {
        (u64::from(size), (u64::from(h) * u64::from(size)).div_ceil(u64::from(w)))
    } else {
        ((u64::from(w) * u64::from(size)).div_ceil(u64::from(h)), u64::from(size))
    };
    if nw * nh > MAX_RESIZED_PIXELS {
        return Err(image_err(format!(
            "{w}x{h} resized to a shorter side of {size} would be {nw}x{nh} pixels, over the limit of \
             {MAX_RESIZED_PIXELS}; crop the image to a less extreme aspect ratio or lower --size"
        )));
    }
    let (nw, nh) = (nw as u32, nh as u32);
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| image_err(e.to_string()))?.to_rgb8();
    let resized = if (nw, nh) == (w, h) { img } else { image::imageops::resize(&img, nw, nh, FilterType::Triangle) };
    let x0 = (nw - size) / 2;
    let y0 = (nh - size) / 2;
    let s = size as usize;
    for y in 0..s {
        for x in 0..s {
            let p = resized.get_pixel(x0 + x as u32, y0 + y as u32);
            for c in 0..3 {
                out[c * s * s + y * s + x] = p[c];
            }
        }
    }
    Ok(())
}

/// Decode every image straight into its slot of one buffer.
fn decode_all(files: &[(PathBuf, u16)], size: u32, progress: &dyn Progress) -> Result<Split, DataError> {
    let len = 3 * size as usize * size as usize;
    let mut images = vec![0u8; files.len() * len];
    images.par_chunks_mut(len).zip(files).try_for_each(|(out, (p, _))| {
        let r = load_image_into(p, size, out);
        progress.advance(1);
        r
    })?;
    Ok(Split { labels: files.iter().map(|f| f.1).collect(), images })
}

/// Load a folder source (`path` is a directory or a list file).
pub fn load(path: &Path, opts: &SourceOptions, progress: &dyn Progress) -> Result<Dataset, DataError> {
    if opts.size == 0 {
        return Err(DataError::Invalid("--size must be at least 1".into()));
    }
    if opts.size > MAX_SIZE {
        return Err(DataError::Invalid(format!(
            "--size {} is over the limit of {MAX_SIZE} pixels per side (a {MAX_SIZE}x{MAX_SIZE} RGB image is \
             48 MiB); a long-tailed classifier rarely needs more than 224",
            opts.size
        )));
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
        let classes = list_classes(path, &tr, opts.test_list.as_deref(), &te)?;
        let pairs = |v: Vec<Listed>| v.into_iter().map(|f| (f.path, f.label)).collect::<Vec<_>>();
        ((0..classes).map(|c| c.to_string()).collect(), pairs(tr), pairs(te))
    };
    if train_files.is_empty() {
        return Err(DataError::Format { path: path.into(), message: "no training images (.png, .jpg, .jpeg)".into() });
    }
    let images = (train_files.len() + test_files.len()) as u64;
    let image_bytes = 3 * u64::from(opts.size) * u64::from(opts.size);
    let need = images.saturating_mul(image_bytes);
    if need > opts.max_source_bytes {
        return Err(DataError::Format {
            path: path.into(),
            message: format!(
                "{images} images x {image_bytes} bytes (--size {}) need {need} bytes, over the limit of {} bytes \
                 (--max-source-bytes); lower --size or raise the limit",
                opts.size, opts.max_source_bytes
            ),
        });
    }

    progress.stage("decode images", (train_files.len() + test_files.len()) as u64);
    let train = decode_all(&train_files, opts.size, progress)?;
    let test = decode_all(&test_files, opts.size, progress)?;
    progress.finish();
    let s = opts.size as usize;
    Ok(Dataset { class_names, image_shape: [3, s, s], train, test })
}
