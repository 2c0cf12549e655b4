use std::path::PathBuf;

/// Why a pipeline could not be read or run. Each message names the file, the setting (as a
/// path like `experiment[2] (ldam-drw).drw`) or the step, and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{path}: {source}; check the path")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a valid TOML pipeline: {message}")]
    Toml { file: PathBuf, message: String },
    #[error("{file}: `{path}`: {hint}")]
    Key { file: PathBuf, path: String, hint: String },
    #[error("{file}: `{path}`: {message}")]
    Invalid { file: PathBuf, path: String, message: String },
    #[error("--set {setting}: {message}")]
    Set { setting: String, message: String },
    #[error(
        "`{tool}` was not found next to {exe} nor on PATH; build it with `cargo build --release -p {package}` (the binaries must sit in one directory) or put it on PATH"
    )]
    ToolMissing { tool: String, package: String, exe: PathBuf },
    #[error(
        "step {step}: `{command}` failed ({status}); its messages are above. Fix the cause and rerun `lt run`: finished steps are kept"
    )]
    StepFailed { step: String, command: String, status: String },
    #[error("step {step}: {message}")]
    Step { step: String, message: String },
    /// Output directories: refusals (not lt's, protected) and write errors.
    #[error(transparent)]
    Output(#[from] lt_fs::FsError),
}
