//! Running pipelines through the real binaries: a killed pipeline reruns without redoing
//! finished experiments, resumes the interrupted one, and skips everything when up to date.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{lt, lt_run, require_tools, text, tiny_pipeline};

fn start(cwd: &Path, file: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(lt())
        .args(["run", file.to_str().unwrap(), "--quiet"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting lt")
}

/// Waits until `path` exists; panics with the log if lt exits first or time runs out.
fn wait_for(child: &mut Child, path: &Path, log: &Path) {
    let t = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "lt exited ({status}) before {} appeared:\n{}",
                path.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(t.elapsed() < Duration::from_secs(900), "timed out waiting for {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes (other than us) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

fn kill_and_reap(child: &mut Child, needle: &str) {
    child.kill().unwrap();
    child.wait().unwrap();
    // Its lt-train dies with it (PR_SET_PDEATHSIG); wait for the kernel to deliver that.
    let t = Instant::now();
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "tools outlived the killed lt: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_pipeline_reruns_without_redoing_finished_experiments() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = tiny_pipeline(
        dir.path(),
        &out,
        &[("first", ""), ("second", "resample = \"class-balanced\"\nepochs = 6"), ("third", "weights = \"inverse\"")],
    );
    let needle = out.display().to_string();
    let runs = out.join("runs");
    let log = dir.path().join("lt.log");

    // 1. Kill lt as soon as the first experiment's run.json appears.
    let mut child = start(dir.path(), &file, &log);
    wait_for(&mut child, &runs.join("first/run.json"), &log);
    kill_and_reap(&mut child, &needle);
    let first = std::fs::read(runs.join("first/run.json")).unwrap();

    // 2. Rerun; kill again once the second experiment has a checkpoint but no run.json.
    let mut child = start(dir.path(), &file, &log);
    // lt-train writes into second.partial until the run is finished.
    wait_for(&mut child, &runs.join("second.partial/checkpoints/last.ckpt"), &log);
    let interrupted = !runs.join("second/run.json").exists();
    kill_and_reap(&mut child, &needle);
    let log2 = std::fs::read_to_string(&log).unwrap();
    assert!(!log2.contains("train first: training"), "the finished experiment ran again:\n{log2}");
    assert!(
        log2.contains("train first: up to date") || log2.contains("train first: finished before the interruption"),
        "{log2}"
    );

    // 3. Rerun to the end.
    let o = lt_run(dir.path(), &["run", file.to_str().unwrap(), "--quiet"]);
    let log3 = text(&o);
    assert!(o.status.success(), "{log3}");
    assert!(log3.contains("train first: up to date"), "{log3}");
    assert!(!log3.contains("train first: training") && !log3.contains("train first: retraining"), "{log3}");
    if interrupted {
        assert!(log3.contains("train second: resuming"), "{log3}");
    }
    assert!(log3.contains("train third: training"), "{log3}");
    assert_eq!(std::fs::read(runs.join("first/run.json")).unwrap(), first, "first/run.json was rewritten");
    let report = out.join("report/index.html");
    assert!(log3.contains(&format!("report: {}", report.display())), "{log3}");
    assert!(std::fs::metadata(&report).unwrap().len() > 0);
    assert!(!out.join("report.partial").exists());
    for name in ["first", "second", "third"] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(runs.join(name).join("run.json")).unwrap()).unwrap();
        let want = if name == "second" { 6 } else { 2 };
        assert_eq!(v["config"]["epochs"], want, "{name}");
        let stamp: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("stamps/train-{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(stamp["state"], "done", "{name}");
    }
    let report_bytes = std::fs::read(&report).unwrap();

    // 4. Nothing changed: every step is up to date and nothing is rewritten.
    let o = lt_run(dir.path(), &["run", file.to_str().unwrap(), "--quiet"]);
    let log4 = text(&o);
    assert!(o.status.success(), "{log4}");
    assert_eq!(log4.matches(": up to date").count(), 5, "{log4}");
    assert_eq!(std::fs::read(&report).unwrap(), report_bytes);

    // 5. One experiment's setting changes: only it and the report run again.
    let o = lt_run(dir.path(), &["run", file.to_str().unwrap(), "--quiet", "--set", "experiment.third.lr=0.02"]);
    let log5 = text(&o);
    assert!(o.status.success(), "{log5}");
    assert!(log5.contains("train third: settings or data changed: retraining from scratch"), "{log5}");
    assert!(log5.contains("train first: up to date") && log5.contains("train second: up to date"), "{log5}");
    assert!(log5.contains("report: comparing 3 runs"), "{log5}");
    assert_eq!(std::fs::read(runs.join("first/run.json")).unwrap(), first);
}

#[test]
fn only_steps_need_their_inputs_and_missing_tools_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = tiny_pipeline(dir.path(), &out, &[("a", "")]);
    // No dataset yet: --only train says to build first (checked before any tool runs).
    if lt().parent().unwrap().join("lt-data").is_file() {
        let o = lt_run(dir.path(), &["run", file.to_str().unwrap(), "--only", "train"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("--only build"), "{}", text(&o));
    }
    // An lt copied where no tool sits next to it, with an empty PATH: the error names the tool.
    let lonely = dir.path().join("bin");
    std::fs::create_dir(&lonely).unwrap();
    std::fs::copy(lt(), lonely.join("lt")).unwrap();
    let o = Command::new(lonely.join("lt"))
        .args(["run", file.to_str().unwrap()])
        .env("PATH", "")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("`lt-data` was not found next to") && t.contains("PATH"), "{t}");
    // --show-config needs no tools.
    let o = Command::new(lonely.join("lt")).args(["run", file.to_str().unwrap(), "--show-config"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Issue 13, defect 2: `lt run` passed `--force` to the build of OUT/data and removed
/// OUT/report whatever they held. Directories lt did not write are now refused, untouched;
/// an `out` that is the working directory is refused before any step.
#[test]
fn a_pipeline_never_replaces_what_lt_did_not_write() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = tiny_pipeline(dir.path(), &out, &[("a", "")]);
    let data = out.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("notes.txt"), "mine").unwrap();
    let o = lt_run(dir.path(), &["run", file.to_str().unwrap(), "--quiet", "--only", "build"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("refusing to replace"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(data.join("notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1);

    // `out = "."`, run from inside a fresh temporary folder holding a user's file.
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("keep"), "").unwrap();
    let text_toml =
        std::fs::read_to_string(&file).unwrap().replace(&format!("out = \"{}\"", out.display()), "out = \".\"");
    let dot = cwd.join("dot.toml");
    std::fs::write(&dot, text_toml).unwrap();
    let o = lt_run(&cwd, &["run", dot.to_str().unwrap(), "--quiet", "--only", "build"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("the current directory"), "{}", text(&o));
    let names: Vec<String> =
        std::fs::read_dir(&cwd).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["dot.toml", "keep"]);
}
