//! Preloading CUDA and cuDNN libraries that came as pip wheels (`nvidia-*`), so `--ep cuda`
//! works without LD_LIBRARY_PATH.
//!
//! The wheels put their libraries in `<site>/nvidia/<pkg>/lib/`, beside
//! `<site>/onnxruntime/capi/` where the onnxruntime library is found. Each is opened with
//! RTLD_GLOBAL, in passes until no more load (a library whose dependency is not loaded yet
//! fails once and succeeds in a later pass); onnxruntime's CUDA provider then finds them by
//! soname among the process's loaded libraries.

use std::path::{Path, PathBuf};

use crate::progress::Progress;
use crate::runtime::RuntimeError;

/// Keeps the preloaded libraries open for the life of the process.
static LOADED: std::sync::OnceLock<Vec<libloading::os::unix::Library>> = std::sync::OnceLock::new();

/// Finds `nvidia/*/lib/*.so*` next to the onnxruntime package and loads them all.
pub fn preload(progress: &dyn Progress) -> Result<Vec<PathBuf>, RuntimeError> {
    let (ort_lib, _) = crate::runtime::locate(true)?;
    let Some(site) = ort_lib.parent().and_then(Path::parent).and_then(Path::parent) else {
        return Ok(Vec::new());
    };
    let candidates = nvidia_libraries(&site.join("nvidia"));
    if candidates.is_empty() {
        progress.message("no pip-installed CUDA libraries beside onnxruntime; using the system's (LD_LIBRARY_PATH)");
        return Ok(Vec::new());
    }
    let mut pending = candidates;
    let mut loaded = Vec::new();
    let mut handles = Vec::new();
    loop {
        let before = pending.len();
        pending.retain(|path| {
            // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's
            // runtime libraries, the same ones onnxruntime would load itself.
            let lib = unsafe {
                libloading::os::unix::Library::open(
                    Some(path),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            };
            match lib {
                Ok(lib) => {
                    handles.push(lib);
                    loaded.push(path.clone());
                    false
                }
                Err(_) => true,
            }
        });
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    let names: Vec<String> =
        loaded.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    progress.message(&format!(
        "preloaded {} CUDA/cuDNN libraries from {}: {}",
        names.len(),
        site.join("nvidia").display(),
        names.join(", ")
    ));
    if !pending.is_empty() {
        progress.message(&format!("{} libraries did not load (missing dependencies): {:?}", pending.len(), pending));
    }
    let _ = LOADED.set(handles);
    Ok(loaded)
}

fn nvidia_libraries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(pkgs) = std::fs::read_dir(root) else { return out };
    for pkg in pkgs.flatten() {
        let Ok(files) = std::fs::read_dir(pkg.path().join("lib")) else { continue };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.contains(".so") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}
