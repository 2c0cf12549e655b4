//! The `lt-data` binary: build, weights, inspect, and its errors.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::dir_bytes;

fn lt_data(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lt-data")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = lt_data(args);
    assert!(o.status.success(), "lt-data {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let o = lt_data(args);
    assert!(!o.status.success(), "lt-data {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

#[test]
fn build_weights_inspect_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut args: Vec<&str> = "build --quiet --source synthetic:500 --test-per-class 20 --profile exp --imbalance 10 \
         --resample instance,random-under,progressive,effective-number --beta 0.99 --epochs 3 --seed 4"
        .split_whitespace()
        .collect();
    let o = out.to_str().unwrap();
    args.extend(["--out", o]);
    ok(&args);
    let meta = lt_data::DatasetMeta::read(&out).unwrap();
    assert_eq!(meta.subset_counts, [500, 387, 299, 232, 179, 139, 107, 83, 64, 50]);
    assert_eq!(meta.profile["kind"], "exp");
    assert_eq!(meta.profile["n_max"], 500);
    assert_eq!(meta.manifests["random-under"].epoch_len, [500, 500, 500]);
    assert_eq!(meta.manifests["effective-number"].beta, Some(0.99));

    // Rerun with --force: byte-identical.
    let before = dir_bytes(&out);
    let mut again = args.to_vec();
    again.push("--force");
    ok(&again);
    assert_eq!(before, dir_bytes(&out));
    // Without --force: refused, directory untouched.
    let e = fails(&args);
    assert!(e.contains("exists and is not empty") && e.contains("--force"), "{e}");
    assert_eq!(before, dir_bytes(&out));

    // Weights as JSON.
    let w: serde_json::Value = serde_json::from_str(&ok(&["weights", o, "--scheme", "inverse"])).unwrap();
    assert_eq!(w["scheme"], "inverse");
    assert!(w["beta"].is_null());
    let ws: Vec<f64> = w["weights"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!((ws.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    assert!((ws[9] / ws[0] - 10.0).abs() < 1e-9);
    let effective = ["weights", o, "--scheme", "effective-number", "--beta", "0.999", "--normalize", "none"];
    let w: serde_json::Value = serde_json::from_str(&ok(&effective)).unwrap();
    assert_eq!(w["beta"], 0.999);
    let w0 = w["weights"][0].as_f64().unwrap();
    assert!((w0 - 0.001 / (1.0 - 0.999f64.powi(500))).abs() < 1e-12, "{w0}");
    let e = fails(&["weights", o, "--scheme", "effective-number", "--beta", "1"]);
    assert!(e.contains("outside [0, 1)"), "{e}");
    let e = fails(&["weights", o, "--scheme", "effective-number"]);
    assert!(e.contains("needs --beta"), "{e}");

    // Inspect: the table, one line per class, with bars and verified hashes.
    let t = ok(&["inspect", o]);
    assert!(t.contains("striped-square") && t.contains("█"), "{t}");
    assert!(t.contains("manifest-random-under (3 epochs)"), "{t}");
    assert!(t.contains("files: 6 sha256 match dataset.json"), "{t}");
    // A changed file is reported.
    let sub = out.join("subset.parquet");
    let mut b = std::fs::read(&sub).unwrap();
    let n = b.len();
    b[n / 2] ^= 0xff;
    std::fs::write(&sub, b).unwrap();
    let o2 = lt_data(&["inspect", o]);
    let text = String::from_utf8_lossy(&o2.stdout).into_owned() + &String::from_utf8_lossy(&o2.stderr);
    assert!(!o2.status.success(), "{text}");
}

#[test]
fn command_line_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("ds");
    let o = o.to_str().unwrap();
    let base = ["build", "-q", "--source", "synthetic:50", "--test-per-class", "2", "--out", o];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        fails(&a)
    };
    assert!(run(&["--profile", "exp", "--imbalance", "0.5"]).contains("must be a finite number >= 1"));
    assert!(run(&["--profile", "exp"]).contains("needs --imbalance"));
    assert!(run(&["--profile", "counts", "--counts", "seed"]).contains("class 0 (disk): 1865 images requested"));
    assert!(run(&["--profile", "counts", "--counts", "1,x"]).contains("`x`"));
    assert!(run(&["--profile", "balanced", "--resample", "smote"]).contains("unknown resampler `smote`"));
    assert!(run(&["--profile", "balanced", "--resample", "effective-number"]).contains("needs --beta"));
    assert!(run(&["--profile", "balanced", "--resample", "sqrt,sqrt"]).contains("listed twice"));
    let idx = tmp.path().join("idx.txt");
    std::fs::write(&idx, "3\n499\n500\n").unwrap();
    let e = run(&["--profile", "indices", "--indices", idx.to_str().unwrap()]);
    assert!(e.contains("idx.txt:3") && e.contains("index 500 is out of range"), "{e}");
    assert!(!Path::new(o).exists());
    // A good indices file.
    std::fs::write(&idx, "3\n499\n0\n").unwrap();
    let mut a = base.to_vec();
    a.extend_from_slice(&["--profile", "indices", "--indices", idx.to_str().unwrap()]);
    ok(&a);
    let meta = lt_data::DatasetMeta::read(Path::new(o)).unwrap();
    assert_eq!(meta.subset_counts.iter().sum::<u64>(), 3);
    assert_eq!(meta.profile["count"], 3);
    // --help explains the options.
    let h = ok(&["build", "--help"]);
    for opt in
        ["--source", "--profile", "--imbalance", "--counts", "--resample", "--epochs", "--beta", "--seed", "--force"]
    {
        assert!(h.contains(opt), "{opt} missing from --help");
    }
}

/// Issue 13, defect 1, as reported: `--force --out .` deleted every file of the current
/// directory. Tried in a child whose working directory is a fresh temporary folder.
#[test]
fn force_on_the_current_directory_is_refused_and_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("x");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("keep"), "").unwrap();
    let args = ["build", "--source", "synthetic:10", "--test-per-class", "2", "--profile", "exp", "--imbalance", "2"];
    // Always run in `cwd`, inside the temporary folder.
    let force_out = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_lt-data"))
            .args(args)
            .args(["--force", "--out", out])
            .current_dir(&cwd)
            .output()
    };
    let o = force_out(".").unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("the current directory"), "{err}");
    assert!(cwd.join("keep").is_file());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "no staging left beside it");
    // Its parent (an ancestor of the working directory) is refused the same way.
    let o = force_out("..").unwrap();
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cwd.join("keep").is_file());
}

/// Issue 13, defect 4: a kill while the old output was being removed left it half deleted.
/// Kill a `--force` rebuild at many moments: every time, OUT is one complete dataset (every
/// file matching its sha256 in dataset.json), and the next build recovers.
#[test]
fn a_kill_at_any_moment_of_a_forced_rebuild_leaves_one_complete_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let o = out.to_str().unwrap();
    let build = |seed: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lt-data"));
        c.args(["build", "--source", "synthetic:300", "--test-per-class", "100", "--profile", "exp"]);
        c.args(["--imbalance", "10", "--resample", "instance,class-balanced", "--epochs", "20", "--quiet"]);
        c.args(["--seed", seed, "--force", "--out", o]);
        c
    };
    assert!(build("0").status().unwrap().success());
    let t0 = std::time::Instant::now();
    assert!(build("1").status().unwrap().success());
    let full = t0.elapsed();
    for i in 0..24u32 {
        let mut child = build(&(i % 2).to_string()).stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(full * i / 20);
        let _ = child.kill();
        child.wait().unwrap();
        let ins = lt_data::inspect::inspect(&out).unwrap_or_else(|e| panic!("kill {i}: {e}"));
        assert!(ins.files_ok.iter().all(|f| f.1), "kill {i}: {:?}", ins.files_ok);
    }
    assert!(build("5").status().unwrap().success());
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["ds"], "nothing left beside the output");
}
