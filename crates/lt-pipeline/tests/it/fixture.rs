//! Helpers: the repository root, the `lt` binary and its sibling tools, small pipelines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

pub fn lt() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lt"))
}

/// `lt` with its arguments, run in `cwd`; returns the output.
pub fn lt_run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(lt()).args(args).current_dir(cwd).output().expect("running lt")
}

/// The step binaries must sit next to `lt` (`cargo test --workspace` builds them there).
pub fn require_tools() {
    let dir = lt().parent().expect("lt's directory").to_path_buf();
    for tool in ["lt-data", "lt-train", "lt-report"] {
        assert!(
            dir.join(tool).is_file(),
            "{} is missing: these tests run the real step binaries; build them into the same target \
             directory (`cargo test --workspace` does, or `cargo build -p lt-data -p lt-train -p lt-report`)",
            dir.join(tool).display()
        );
    }
}

/// A pipeline of `experiments` tiny runs on synthetic data (seconds per run on a CPU).
pub fn tiny_pipeline(dir: &Path, out: &Path, experiments: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        r#"name = "tiny"
out = "{}"

[data]
source = "synthetic:40"
test_per_class = 10
profile = "exp"
imbalance = 10

[train]
arch = "densenet-tiny"
ep = "cpu"
epochs = 2
batch_size = 16
lr = 0.05
threads = 1
"#,
        out.display()
    );
    for (name, extra) in experiments {
        text.push_str(&format!("\n[[experiment]]\nname = \"{name}\"\n{extra}\n"));
    }
    let file = dir.join("tiny.toml");
    std::fs::write(&file, text).expect("writing the pipeline");
    file
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
