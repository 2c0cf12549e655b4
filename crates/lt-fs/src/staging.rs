//! Replacing an output directory so that a kill at any moment leaves the old or the new
//! output complete.
//!
//! The new output is written into `NAME.partial` beside `NAME`. [`Staging::commit`] swaps the
//! two with one `renameat2(RENAME_EXCHANGE)` where the file system has it, else by moving the
//! old one aside to `NAME.old` and the new one in. The old output is removed last, its marker
//! last of all, so a half-removed leftover is still recognisably lt's and the next run removes
//! it. A kill between the two renames of the fallback leaves `NAME.old` complete; the next
//! [`Staging::begin`] moves it back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::guard::resolve_output;
use crate::{FsError, MARKER_FILE, Marker, MarkerState, Owner};

/// A directory being written in place of `target`.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    staging: PathBuf,
    owner: Owner,
    committed: bool,
    /// A staging directory this process created is removed when dropped uncommitted (the
    /// operation failed); one continued by [`Staging::resume`] is kept for the next try.
    discard_on_drop: bool,
}

/// `NAME.partial` beside `target` (no file-system access).
pub fn staging_path(target: &Path) -> PathBuf {
    sibling(target, ".partial")
}

fn aside_path(target: &Path) -> PathBuf {
    sibling(target, ".old")
}

fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = target.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "output".into());
    name.push(suffix);
    target.with_file_name(name)
}

/// The refusal of a directory at the staging name that lt did not stage there.
fn foreign_staging(staging: PathBuf, target: &Path, owner: &Owner) -> FsError {
    FsError::Foreign {
        path: staging,
        reason: format!("lt stages {} here, and this holds no {} marker", target.display(), owner.format),
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool, FsError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(FsError::io(dir, e)),
    }
}

/// A staging directory a kill left between its creation and its marker: empty, or holding
/// only the marker's temporary file. Removing it deletes nothing of anyone's.
fn remove_if_unmarked_start(staging: &Path) -> Result<(), FsError> {
    let Ok(entries) = std::fs::read_dir(staging) else { return Ok(()) };
    let marker_tmp = format!("{MARKER_FILE}.partial");
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::io(staging, e))?;
        names.push(entry.file_name());
        if names.len() > 1 {
            return Ok(());
        }
    }
    match names.first() {
        None => std::fs::remove_dir(staging).map_err(|e| FsError::io(staging, e)),
        Some(n) if *n == *marker_tmp => {
            let tmp = staging.join(&marker_tmp);
            if !std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
                return Ok(());
            }
            std::fs::remove_file(&tmp).map_err(|e| FsError::io(&tmp, e))?;
            std::fs::remove_dir(staging).map_err(|e| FsError::io(staging, e))
        }
        Some(_) => Ok(()),
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

impl Staging {
    /// Starts writing a new output for `target`. Refuses a protected path; an existing
    /// non-empty `target` needs `force` and must be `owner`'s output. A stale `NAME.partial`
    /// of the same format (a killed earlier attempt) is removed; a foreign one is refused.
    pub fn begin(target: &Path, owner: Owner, force: bool) -> Result<Staging, FsError> {
        let target = resolve_output(target)?;
        recover(&target, &owner)?;
        if !is_empty_dir(&target)? {
            if !force {
                return Err(FsError::NotEmpty { path: target });
            }
            if !owner.owns(&target) {
                return Err(FsError::Foreign {
                    path: target,
                    reason: format!("it is not empty and holds no {} output of {}", owner.format, owner.tool),
                });
            }
        }
        let staging = staging_path(&target);
        remove_if_unmarked_start(&staging)?;
        if exists(&staging) {
            if owner.state_in(&staging).is_none() {
                return Err(foreign_staging(staging, &target, &owner));
            }
            remove_owned(&staging)?;
        }
        std::fs::create_dir(&staging).map_err(|e| FsError::io(&staging, e))?;
        Marker::write(&staging, &owner, MarkerState::Partial)?;
        Ok(Staging { target, staging, owner, committed: false, discard_on_drop: true })
    }

    /// Continues the interrupted staging directory of `target`, if there is one of `owner`'s
    /// format still being written. A complete one left there is the old output of a swap that
    /// was killed before its removal: it is removed and `None` returned.
    pub fn resume(target: &Path, owner: Owner) -> Result<Option<Staging>, FsError> {
        let target = resolve_output(target)?;
        recover(&target, &owner)?;
        let staging = staging_path(&target);
        remove_if_unmarked_start(&staging)?;
        if !exists(&staging) {
            return Ok(None);
        }
        match owner.state_in(&staging) {
            Some(MarkerState::Partial) => {
                Ok(Some(Staging { target, staging, owner, committed: false, discard_on_drop: false }))
            }
            Some(MarkerState::Complete) => {
                remove_owned(&staging)?;
                Ok(None)
            }
            None => Err(foreign_staging(staging, &target, &owner)),
        }
    }

    /// Whether `target` has an interrupted staging directory of `owner`'s format.
    pub fn interrupted(target: &Path, owner: &Owner) -> bool {
        owner.state_in(&staging_path(target)) == Some(MarkerState::Partial)
    }

    /// Where to write the new output.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The output directory this staging replaces (absolute, parent resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Removes the staging directory when this value is dropped uncommitted (the default for
    /// [`Staging::begin`]) or keeps it for a later [`Staging::resume`].
    pub fn discard_on_drop(&mut self, discard: bool) {
        self.discard_on_drop = discard;
    }

    /// Puts the staged output in place of `target` and removes the old output.
    pub fn commit(mut self) -> Result<PathBuf, FsError> {
        Marker::write(&self.staging, &self.owner, MarkerState::Complete)?;
        let target = self.target.clone();
        if !exists(&target) {
            std::fs::rename(&self.staging, &target).map_err(|e| FsError::io(&target, e))?;
            self.committed = true;
            return Ok(target);
        }
        // Checked again: the directory may have changed since `begin`.
        let empty = is_empty_dir(&target)?;
        if !empty && !self.owner.owns(&target) {
            return Err(FsError::Foreign {
                path: target,
                reason: "it changed while the new output was written".into(),
            });
        }
        if Marker::read(&target).is_none() {
            // An empty directory or an older lt's output: marked, so that once swapped out it
            // is recognisably lt's until removed.
            Marker::write(&target, &self.owner, MarkerState::Complete)?;
        }
        if exchange(&self.staging, &target).is_ok() {
            self.committed = true;
            // The old output now lies at the staging path, marked complete.
            remove_owned(&self.staging)?;
            return Ok(target);
        }
        let aside = aside_path(&target);
        if exists(&aside) {
            if !self.owner.owns(&aside) {
                return Err(FsError::Foreign { path: aside, reason: "lt moves the old output here".into() });
            }
            remove_owned(&aside)?;
        }
        std::fs::rename(&target, &aside).map_err(|e| FsError::io(&aside, e))?;
        std::fs::rename(&self.staging, &target).map_err(|e| FsError::io(&target, e))?;
        self.committed = true;
        remove_owned(&aside)?;
        Ok(target)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed && self.discard_on_drop {
            let _ = remove_owned(&self.staging);
        }
    }
}

/// Finishes what a killed [`Staging::commit`] left: the old output moved aside with no new
/// output in place goes back; an old output left aside after the swap is removed.
fn recover(target: &Path, owner: &Owner) -> Result<(), FsError> {
    let aside = aside_path(target);
    if owner.state_in(&aside).is_none() {
        return Ok(());
    }
    if exists(target) {
        remove_owned(&aside)
    } else {
        std::fs::rename(&aside, target).map_err(|e| FsError::io(target, e))
    }
}

/// Removes a directory lt wrote, its marker last, so that an interrupted removal leaves a
/// directory that is still recognisably lt's. Links inside are removed, never followed.
pub fn remove_owned(dir: &Path) -> Result<(), FsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| FsError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FsError::io(dir, e))?;
        if entry.file_name() == MARKER_FILE {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| FsError::io(&path, e))?;
        let removed = if kind.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(|e| FsError::io(&path, e))?;
    }
    let marker = dir.join(MARKER_FILE);
    if exists(&marker) {
        std::fs::remove_file(&marker).map_err(|e| FsError::io(&marker, e))?;
    }
    std::fs::remove_dir(dir).map_err(|e| FsError::io(dir, e))
}

/// Swaps two directories atomically (Linux `renameat2(RENAME_EXCHANGE)`); an error where the
/// file system or kernel lacks it.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
