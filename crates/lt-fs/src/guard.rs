//! Paths that are never an output directory, whatever they hold.

use std::path::{Component, Path, PathBuf};

use crate::FsError;

/// Resolves `target` to an absolute path whose parent is canonical (symbolic links and `..`
/// resolved), creating the parent, and checks that it may be an output directory: it names a
/// directory (not `.`, `..` or `/`), is no symbolic link and no file, and is not
/// [protected](check_not_protected).
pub fn resolve_output(target: &Path) -> Result<PathBuf, FsError> {
    let abs = std::path::absolute(target).map_err(|e| FsError::io(target, e))?;
    let Some(Component::Normal(name)) = abs.components().next_back() else {
        return Err(FsError::Protected { path: target.into(), what: "not a directory name (`.`, `..` or `/`)" });
    };
    let parent = abs.parent().expect("a path ending in a name has a parent");
    std::fs::create_dir_all(parent).map_err(|e| FsError::io(parent, e))?;
    let parent = parent.canonicalize().map_err(|e| FsError::io(parent, e))?;
    let resolved = parent.join(name);
    match std::fs::symlink_metadata(&resolved) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(FsError::Protected {
                path: resolved,
                what: "a symbolic link; give the directory it points to",
            });
        }
        Ok(m) if !m.is_dir() => return Err(FsError::Protected { path: resolved, what: "not a directory" }),
        _ => {}
    }
    check_not_protected(&resolved)?;
    Ok(resolved)
}

/// Refuses `/`, the home directory, the current directory and every ancestor of it.
/// `path` should be absolute and resolved ([`resolve_output`] does both).
pub fn check_not_protected(path: &Path) -> Result<(), FsError> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if canonical.parent().is_none() {
        return Err(FsError::Protected { path: path.into(), what: "the root directory" });
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).and_then(|h| h.canonicalize().ok());
    if home.as_deref() == Some(canonical.as_path()) {
        return Err(FsError::Protected { path: path.into(), what: "the home directory" });
    }
    if let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) {
        if cwd == canonical {
            return Err(FsError::Protected { path: path.into(), what: "the current directory" });
        }
        if cwd.starts_with(&canonical) {
            return Err(FsError::Protected { path: path.into(), what: "an ancestor of the current directory" });
        }
    }
    Ok(())
}
