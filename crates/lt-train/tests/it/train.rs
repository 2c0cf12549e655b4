//! Training runs end to end through the `lt-train` binary and the library.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::fixture::{lt_train, p, read_json, stderr, write_dataset};

/// A 4-class fixture in a fresh temporary directory, and the flags of a small, fast run on it.
struct SmallRun {
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl SmallRun {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        write_dataset(&data, &[48, 32, 16, 8], 10, 7);
        SmallRun { dir, data }
    }

    /// `name` inside the temporary directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The common flags, then `extra`.
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["--data", p(&self.data), "--arch", "densenet-tiny", "--batch-size", "16", "--threads", "2"];
        a.push("--quiet");
        a.extend(extra);
        a
    }

    /// `lt-train` with the common flags and `extra`.
    fn train(&self, extra: &[&str]) -> std::process::Output {
        lt_train(&self.args(extra))
    }
}

#[test]
fn a_run_writes_every_file_of_the_run_directory() {
    let fx = SmallRun::new();
    let out = fx.path("run");
    let o =
        fx.train(&["--epochs", "2", "--out", p(&out), "--weights", "effective-number", "--beta", "0.99", "--drw", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["run.json", "metrics.parquet", "predictions.parquet", "model.onnx", "checkpoints/last.ckpt"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let run = read_json(&out.join("run.json"));
    assert_eq!(run["train_counts"], serde_json::json!([48, 32, 16, 8]));
    assert_eq!(run["execution_provider"], "cpu");
    assert_eq!(run["config"]["drw"], 2);
    assert_eq!(run["class_weights"]["before_drw"], serde_json::json!([1.0, 1.0, 1.0, 1.0]));
    let w: Vec<f64> = serde_json::from_value(run["class_weights"]["weights"].clone()).unwrap();
    // Effective number, β = 0.99, normalised to sum to C: rarer classes weigh more.
    assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-4 && w[3] > w[2] && w[2] > w[1] && w[1] > w[0], "{w:?}");
    assert_eq!(run["normalization"]["mean"].as_array().unwrap().len(), 3);
    assert_eq!(run["final"]["per_class"].as_array().unwrap().len(), 4);
    assert_eq!(run["timings"]["per_epoch_s"].as_array().unwrap().len(), 2);
    // The exported model.onnx, evaluated on its own, reproduces the run's final test accuracy.
    let report = fx.path("eval.json");
    let model = out.join("model.onnx");
    let o = lt_train(&["eval", "--model", p(&model), "--data", p(&fx.data), "--run", p(&out), "--out", p(&report)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval = read_json(&report);
    assert_eq!(eval["report"]["accuracy"], run["final"]["overall"]);
    assert_eq!(eval["report"]["per_class_accuracy"], run["final"]["per_class"]);
    // No partial files are left behind.
    let leftovers: Vec<_> = walk(&out).into_iter().filter(|p| p.to_string_lossy().contains("partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn bad_flags_are_errors_that_say_what_to_do() {
    let fx = SmallRun::new();
    let out = fx.path("run");
    let run = |extra: &[&str]| fx.train(&[&["--out", p(&out)], extra].concat());
    let cases: &[(&[&str], &str)] = &[
        (&["--weights", "effective-number", "--beta", "1.5"], "beta"),
        (&["--drw", "0"], "drw"),
        (&["--epochs", "0"], "epochs"),
        (&["--schedule", "linear"], "constant, cosine"),
        (&["--nesterov", "--momentum", "0"], "nesterov"),
        (&["--ep", "cuda"], "CUDA provider"),
    ];
    for (extra, needle) in cases {
        let o = run(extra);
        assert!(!o.status.success(), "{extra:?} should fail");
        let e = stderr(&o);
        assert!(e.contains(needle), "{extra:?}: expected `{needle}` in: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // The CUDA failure happened before anything was written.
    assert!(!out.join("run.json").exists());
}

/// A directory lt-train did not write: `keep.txt` ("mine") in `path`.
fn users_directory(path: &Path) -> PathBuf {
    std::fs::create_dir(path).unwrap();
    std::fs::write(path.join("keep.txt"), "mine").unwrap();
    path.to_path_buf()
}

#[test]
fn an_existing_run_directory_needs_resume_or_force() {
    let fx = SmallRun::new();
    let out = users_directory(&fx.path("run"));
    let o = fx.train(&["--out", p(&out), "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--resume") && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn a_diverging_loss_stops_with_epoch_and_step() {
    let fx = SmallRun::new();
    let out = fx.path("run");
    let o = fx.train(&["--out", p(&out), "--epochs", "2", "--lr", "1e30", "--momentum", "0"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("at epoch 1, step 2") || e.contains("at epoch 1, step 3"), "{e}");
    assert!(e.contains("is as it was before"), "{e}");
    // A failed run leaves no directory behind: neither the run nor its staging.
    assert!(!out.exists() && !fx.path("run.partial").exists());
}

/// Issue 13, defect 3: `--force` used to delete the previous run before training, so a run
/// that then failed left an empty directory in place of a good run.
#[test]
fn a_failed_forced_run_leaves_the_previous_run_untouched() {
    let fx = SmallRun::new();
    let out = fx.path("run");
    let mut a = fx.args(&["--out", p(&out), "--epochs", "1"]);
    let o = lt_train(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let before: Vec<Vec<u8>> =
        ["run.json", "model.onnx", "metrics.parquet"].iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    a.extend(["--force", "--lr", "1e30", "--momentum", "0"]);
    let o = lt_train(&a);
    assert!(!o.status.success());
    let after: Vec<Vec<u8>> =
        ["run.json", "model.onnx", "metrics.parquet"].iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    assert!(before == after, "the previous run changed");
    assert!(!fx.path("run.partial").exists());
}

/// Issue 13, defect 1: `--force` deleted whatever --out named. A directory lt-train did not
/// write is refused, and the current directory is refused even when it is lt's; both tried in
/// a child whose working directory is a fresh temporary folder.
#[test]
fn force_refuses_what_lt_train_did_not_write() {
    let fx = SmallRun::new();
    let foreign = users_directory(&fx.path("notes"));
    let a = fx.args(&["--epochs", "1", "--force"]);
    let o = lt_train(&[&a[..], &["--out", p(&foreign)]].concat());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("refusing to replace"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);

    // A finished run as the working directory: `--out .` is refused, nothing is deleted.
    let run = fx.path("cwd-run");
    let o = lt_train(&[&a[..], &["--out", p(&run)]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let files = std::fs::read_dir(&run).unwrap().count();
    let o =
        Command::new(env!("CARGO_BIN_EXE_lt-train")).args(&a).args(["--out", "."]).current_dir(&run).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("current directory"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&run).unwrap().count(), files);
    assert!(run.join("run.json").is_file());
}

/// `--resume` on a finished run says so and trains nothing; a run directory moved elsewhere
/// (its staging copied) still resumes: the path is no setting.
#[test]
fn resume_of_a_finished_or_moved_run() {
    let fx = SmallRun::new();
    let out = fx.path("run");
    let a = fx.args(&["--epochs", "1", "--seed", "3"]);
    let o = lt_train(&[&a[..], &["--out", p(&out)]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let model = std::fs::read(out.join("model.onnx")).unwrap();
    let o = lt_train(&[&a[..], &["--out", p(&out), "--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("finished run; nothing to resume"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("model.onnx")).unwrap(), model);

    // An interrupted run whose directory was copied: resume it under its new name.
    let partial = fx.path("copy.partial");
    std::fs::create_dir(&partial).unwrap();
    for f in [".lt-output.json", "checkpoints"] {
        let to = partial.join(f);
        if f == "checkpoints" {
            std::fs::create_dir(&to).unwrap();
            std::fs::copy(out.join("checkpoints/last.ckpt"), to.join("last.ckpt")).unwrap();
        } else {
            std::fs::write(&to, r#"{"tool":"lt-train","format":"lt-run","state":"partial"}"#).unwrap();
        }
    }
    let copy = fx.path("copy");
    let o = lt_train(&[&a[..], &["--out", p(&copy), "--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming after epoch 1"), "{}", stderr(&o));
    assert_eq!(std::fs::read(copy.join("model.onnx")).unwrap(), model);
}

#[test]
fn resume_after_a_kill_ends_with_the_same_weights() {
    let fx = SmallRun::new();
    let straight = fx.path("straight");
    let o = fx.train(&["--out", p(&straight), "--epochs", "3", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Kill the second run as soon as its first checkpoint exists.
    let killed = fx.path("killed");
    let mut a = fx.args(&["--out", p(&killed), "--epochs", "3", "--seed", "5"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lt-train")).args(&a).spawn().unwrap();
    // The run is written in killed.partial until it finishes.
    let ckpt = fx.path("killed.partial/checkpoints/last.ckpt");
    let t0 = std::time::Instant::now();
    while !ckpt.exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.exists(), "the run finished before it could be killed");
    // A plain rerun does not discard the interrupted run.
    let o = lt_train(&a);
    assert!(!o.status.success() && stderr(&o).contains("interrupted run"), "{}", stderr(&o));

    a.push("--resume");
    let o = lt_train(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming after epoch"), "{}", stderr(&o));
    let (x, y) =
        (std::fs::read(straight.join("model.onnx")).unwrap(), std::fs::read(killed.join("model.onnx")).unwrap());
    assert!(x == y, "resumed weights differ from the uninterrupted run");
    assert_eq!(
        std::fs::read(straight.join("metrics.parquet")).unwrap(),
        std::fs::read(killed.join("metrics.parquet")).unwrap()
    );
}

#[test]
fn an_imported_onnx_model_trains_and_keeps_its_names() {
    let fx = SmallRun::new();
    // The inference graph `lt-train graph` writes for `classes` classes, and a short run on it.
    let graph = |classes: &str, dir: &Path| {
        let o = lt_train(&[
            "graph",
            "--arch",
            "densenet-tiny",
            "--classes",
            classes,
            "--batch-size",
            "16",
            "--out",
            p(dir),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        dir.join("eval.onnx")
    };
    let train = |model: &Path, out: &Path| {
        lt_train(&["--data", p(&fx.data), "--model", p(model), "--batch-size", "16", "--epochs", "1", "--out", p(out)])
    };
    let (eval_onnx, out) = (graph("4", &fx.path("graphs")), fx.path("run"));
    let o = train(&eval_onnx, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let original = lt_graph::onnx::load(&eval_onnx).unwrap();
    let trained = lt_graph::onnx::load(&out.join("model.onnx")).unwrap();
    let names = |m: &lt_graph::onnx::proto::ModelProto| {
        let mut n: Vec<String> = m.graph.as_ref().unwrap().initializer.iter().map(|t| t.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&original), names(&trained));
    assert_ne!(original, trained, "training changed no weight");
    // A model whose head does not match the dataset's classes is refused before training.
    let o = train(&graph("3", &fx.path("g3")), &fx.path("r3"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("3 outputs but the dataset has 4 classes"), "{}", stderr(&o));
}
