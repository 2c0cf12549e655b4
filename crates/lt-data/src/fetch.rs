//! `lt-data fetch`: download an official CIFAR archive (resuming a partial download with an
//! HTTP Range request), verify its published MD5, and extract it without ever writing outside
//! the target directory (absolute paths, `..` and links are refused), within size limits, and
//! without replacing anything an earlier `lt-data fetch` did not write.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use md5::Md5;

use crate::error::DataError;
use crate::progress::Progress;

/// A downloadable data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub name: &'static str,
    pub url: &'static str,
    pub md5: &'static str,
    /// Directory the archive extracts to.
    pub dir: &'static str,
}

/// The official archives and their published MD5 sums.
pub const KNOWN: [Known; 3] = [
    Known {
        name: "cifar10",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
        dir: "cifar-10-batches-bin",
    },
    Known {
        name: "cifar100",
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        md5: "03b5dce01913d631647c71ecec9e9cb8",
        dir: "cifar-100-binary",
    },
    Known {
        name: "cifar10-py",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5: "c58f30108f718f92721af3b95e74349a",
        dir: "cifar-10-batches-py",
    },
];

/// Look a data set up by name.
pub fn known(name: &str) -> Result<Known, DataError> {
    KNOWN.iter().find(|k| k.name == name).copied().ok_or_else(|| {
        DataError::Invalid(format!(
            "unknown data set `{name}`; use one of {}",
            KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// MD5 (hex) of a file.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    crate::hash::hex_digest_of_file::<Md5>(path)
}

/// Download `url` to `dest`, resuming from `dest.part` when present, and verify the MD5.
/// An already complete `dest` with the right MD5 is kept as is.
pub fn download(url: &str, dest: &Path, md5: &str, progress: &dyn Progress) -> Result<(), DataError> {
    let md5 = md5.to_ascii_lowercase();
    if dest.exists() {
        let actual = md5_file(dest)?;
        if actual == md5 {
            return Ok(());
        }
        // lt-data renames a download to its name only once verified: this file is not ours.
        return Err(DataError::Md5Mismatch { path: dest.into(), expected: md5, actual });
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let http = |message: String| DataError::Http { url: url.to_string(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = req.call().map_err(|e| http(format!("{e} (check the URL and your network, then retry)")))?;
    let status = resp.status().as_u16();
    let (append, start) = match status {
        206 => (true, have),
        200 => (false, 0),
        // The partial file already holds everything.
        416 if have > 0 => (true, have),
        s => return Err(http(format!("HTTP status {s}"))),
    };
    if status != 416 {
        let length: Option<u64> =
            resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        progress.stage("download", length.map_or(0, |l| l + start));
        progress.advance(start);
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&part)
            .map_err(|e| DataError::io(&part, e))?;
        let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body.read(&mut buf).map_err(|e| http(format!("{e}; run fetch again to resume")))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|e| DataError::io(&part, e))?;
            progress.advance(n as u64);
        }
        out.sync_all().map_err(|e| DataError::io(&part, e))?;
        progress.finish();
    }
    let actual = md5_file(&part)?;
    if actual != md5 {
        let _ = std::fs::remove_file(&part);
        return Err(DataError::Md5Mismatch { path: part, expected: md5, actual });
    }
    std::fs::rename(&part, dest).map_err(|e| DataError::io(dest, e))
}

/// Check that an archive entry's path stays inside the target directory.
pub fn safe_relative(archive: &Path, entry: &Path) -> Result<PathBuf, DataError> {
    let refuse =
        |reason| DataError::UnsafeEntry { archive: archive.into(), entry: entry.display().to_string(), reason };
    let mut out = PathBuf::new();
    for c in entry.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("it contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse("it is an absolute path")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refuse("it has an empty path"));
    }
    Ok(out)
}

/// Bounds on what one archive may expand to, checked before each entry is written: a small
/// archive must not fill the disk (a 3 MB gzip can expand to 3 GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Total bytes of all extracted files. The CIFAR archives expand to about 180 MB.
    pub max_bytes: u64,
    /// Number of entries (files and directories).
    pub max_entries: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits { max_bytes: 2 << 30, max_entries: 100_000 }
    }
}

/// Extract a `.tar.gz` into `dir`. Each top-level directory of the archive is written into
/// `dir/NAME.partial` and swapped in for `dir/NAME` when the whole archive is good (an
/// [`lt_fs::Staging`]). An existing `dir/NAME` is replaced only when an earlier `lt-data fetch`
/// wrote it (its marker); anything else there is refused, never deleted. Top-level files are
/// refused: there would be no directory to mark.
pub fn extract(
    archive: &Path,
    dir: &Path,
    limits: &ExtractLimits,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, DataError> {
    let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    progress.stage("extract", total);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad =
        |e: std::io::Error| DataError::Format { path: archive.into(), message: format!("not a valid .tar.gz: {e}") };
    let too_big = |what: String| DataError::Format {
        path: archive.into(),
        message: format!("{what}; a larger archive needs --max-extract-bytes (or is not the data set it claims to be)"),
    };
    // One staging directory per top-level name, in order of appearance; dropped (removed) on
    // any error.
    let mut tops: Vec<(PathBuf, lt_fs::Staging)> = Vec::new();
    let (mut bytes, mut entries) = (0u64, 0u64);
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName) {
            continue;
        }
        let rel = safe_relative(archive, &raw)?;
        let refuse =
            |reason| DataError::UnsafeEntry { archive: archive.into(), entry: raw.display().to_string(), reason };
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(refuse("links are not extracted"));
        }
        if !kind.is_dir() && !kind.is_file() {
            return Err(refuse("only regular files and directories are extracted"));
        }
        entries += 1;
        if entries > limits.max_entries {
            return Err(too_big(format!("more than {} entries", limits.max_entries)));
        }
        let mut parts = rel.components();
        let top = PathBuf::from(parts.next().expect("non-empty path").as_os_str());
        let rest = parts.as_path().to_path_buf();
        if rest.as_os_str().is_empty() && !kind.is_dir() {
            return Err(refuse("files at the top level of the archive are not extracted"));
        }
        let staging = match tops.iter().position(|(t, _)| *t == top) {
            Some(i) => &tops[i].1,
            None => {
                let s = lt_fs::Staging::begin(&dir.join(&top), lt_fs::owners::FETCHED, true)?;
                tops.push((top, s));
                &tops.last().expect("just pushed").1
            }
        };
        let target = staging.path().join(&rest);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| DataError::io(&target, e))?;
            continue;
        }
        let size = entry.header().size().map_err(bad)?;
        if bytes.saturating_add(size) > limits.max_bytes {
            return Err(too_big(format!("it expands to more than {} bytes", limits.max_bytes)));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let mut out = File::create(&target).map_err(|e| DataError::io(&target, e))?;
        // The header's size is what the tar reader yields; `take` makes sure of it.
        let n = std::io::copy(&mut (&mut entry).take(size), &mut out).map_err(bad)?;
        bytes += n;
        progress.advance(n);
    }
    progress.finish();
    if tops.is_empty() {
        return Err(DataError::Format {
            path: archive.into(),
            message: "the archive holds no files; delete it and fetch again".into(),
        });
    }
    tops.into_iter().map(|(_, staging)| Ok(staging.commit()?)).collect()
}

/// Download (if needed) and extract a data set into `dir`; returns the extracted paths.
pub fn fetch(
    url: &str,
    md5: &str,
    dir: &Path,
    limits: &ExtractLimits,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != ".." && *n != ".")
        .ok_or_else(|| DataError::Invalid(format!("URL `{url}` does not end in a file name")))?;
    let archive = dir.join(name);
    download(url, &archive, md5, progress)?;
    extract(&archive, dir, limits, progress)
}
