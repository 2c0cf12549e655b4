//! Finding and loading onnxruntime (the `ort` crate with `load-dynamic`).
//!
//! lt never downloads onnxruntime at build time: the library comes from the PyPI wheel,
//! installed by `scripts/install-ort.sh` into the project-local `.ort/` folder. At run time
//! the library is looked for, in this order:
//! 1. `ORT_DYLIB_PATH` (a file path),
//! 2. the project-local install: `.ort/gpu/...` (when CUDA is wanted) then `.ort/cpu/...`,
//!    searched in the current directory, its ancestors, and the ancestors of the executable,
//! 3. an `onnxruntime` (or `onnxruntime-gpu`) package of the installed Python.
//!
//! ort allows one Environment per process: [`Runtime::get`] creates it once and hands out
//! the same `&'static Runtime` afterwards.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The onnxruntime release lt is built and tested against (`api-31` in ort).
pub const ORT_VERSION: &str = "1.31.1";
const LIB_NAME: &str = "libonnxruntime.so.1.31.1";
const INSTALL_HINT: &str = "install it with `bash scripts/install-ort.sh` (CPU) or `bash scripts/install-ort.sh --gpu` (CUDA) from the lt checkout, or point ORT_DYLIB_PATH at a libonnxruntime.so of version 1.31";

/// Where the library was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibrarySource {
    EnvVar,
    ProjectLocal,
    PythonPackage,
}

impl std::fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LibrarySource::EnvVar => "ORT_DYLIB_PATH",
            LibrarySource::ProjectLocal => "project-local .ort/",
            LibrarySource::PythonPackage => "Python onnxruntime package",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "onnxruntime not found (looked at ORT_DYLIB_PATH, {searched}, and the Python onnxruntime package): {INSTALL_HINT}"
    )]
    NotFound { searched: String },
    #[error("ORT_DYLIB_PATH={path} does not exist: fix the variable, unset it, or {INSTALL_HINT}")]
    EnvPathMissing { path: String },
    #[error("could not load onnxruntime from {path}: {message}; {INSTALL_HINT}")]
    Load { path: String, message: String },
    #[error("training state: {message}")]
    State { message: String },
    #[error("{message}")]
    Device { message: String },
    #[error("onnxruntime: {0}")]
    Ort(#[from] ort::Error),
}

/// The process-wide onnxruntime environment and where its library came from.
#[derive(Debug)]
pub struct Runtime {
    pub library: PathBuf,
    pub source: LibrarySource,
    environment: ort::environment::Environment,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Runtime {
    /// Loads onnxruntime once per process. `want_gpu` prefers the `onnxruntime-gpu` install.
    pub fn get(want_gpu: bool) -> Result<&'static Runtime, RuntimeError> {
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        let (library, source) = locate(want_gpu)?;
        let builder = ort::init_from(&library)
            .map_err(|e| RuntimeError::Load { path: library.display().to_string(), message: e.to_string() })?;
        let environment = builder.with_name("lt").build()?;
        Ok(RUNTIME.get_or_init(|| Runtime { library, source, environment }))
    }

    /// The one onnxruntime environment of this process; every session is built from it.
    pub fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }

    /// Whether the loaded library was built with the CUDA execution provider (the
    /// `onnxruntime-gpu` wheel). A usable GPU is a separate question, answered when a
    /// session registers the provider.
    pub fn has_cuda_provider(&self) -> Result<bool, RuntimeError> {
        use ort::ep::ExecutionProvider as _;
        Ok(ort::ep::CUDA::is_available()?)
    }
}

/// Finds the onnxruntime library without loading it.
pub fn locate(want_gpu: bool) -> Result<(PathBuf, LibrarySource), RuntimeError> {
    let env_path = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()).map(PathBuf::from);
    locate_with(env_path, &search_roots(), want_gpu, python_package_library)
}

/// The search order of [`locate`], with its inputs explicit so it can be tested.
pub fn locate_with(
    env_path: Option<PathBuf>,
    roots: &[PathBuf],
    want_gpu: bool,
    python: impl FnOnce() -> Option<PathBuf>,
) -> Result<(PathBuf, LibrarySource), RuntimeError> {
    if let Some(path) = env_path {
        if !path.is_file() {
            return Err(RuntimeError::EnvPathMissing { path: path.display().to_string() });
        }
        return Ok((path, LibrarySource::EnvVar));
    }
    let flavors: &[&str] = if want_gpu { &["gpu", "cpu"] } else { &["cpu", "gpu"] };
    for root in roots {
        for flavor in flavors {
            let candidate = project_local_library(root, flavor);
            if candidate.is_file() {
                return Ok((candidate, LibrarySource::ProjectLocal));
            }
        }
    }
    if let Some(path) = python() {
        return Ok((path, LibrarySource::PythonPackage));
    }
    let searched = roots.iter().map(|r| r.join(".ort").display().to_string()).collect::<Vec<_>>().join(", ");
    Err(RuntimeError::NotFound { searched })
}

/// `ROOT/.ort/FLAVOR/onnxruntime/capi/libonnxruntime.so.1.31.1`, where the install script puts it.
pub fn project_local_library(root: &Path, flavor: &str) -> PathBuf {
    root.join(".ort").join(flavor).join("onnxruntime").join("capi").join(LIB_NAME)
}

/// The current directory and the executable's directory, each with all their ancestors.
fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let starts =
        [std::env::current_dir().ok(), std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf))];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            if !roots.iter().any(|r| r == dir) {
                roots.push(dir.to_path_buf());
            }
        }
    }
    roots
}

/// Asks the installed Python where its onnxruntime package lives (no import of onnxruntime
/// itself: `find_spec` only resolves the path, so a broken package cannot crash us).
fn python_package_library() -> Option<PathBuf> {
    let script = "import importlib.util as u\nfor m in ('onnxruntime',):\n    s = u.find_spec(m)\n    if s and s.submodule_search_locations: print(list(s.submodule_search_locations)[0])";
    let out = std::process::Command::new("python3").args(["-c", script]).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let candidate = PathBuf::from(dir.trim()).join("capi").join(LIB_NAME);
    candidate.is_file().then_some(candidate)
}
