//! Running a resolved pipeline: build -> every experiment -> report, as child processes of
//! `lt-data`, `lt-train` and `lt-report`, skipping steps whose stamps are up to date.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use lt_format::{RunRecord, TrainConfig};
use serde_json::json;

use crate::error::PipelineError;
use crate::spec::Pipeline;
use crate::stamp::{self, Stamp, State};

/// Which steps `lt run --only` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Build,
    Train,
    Report,
}

/// Where the three step binaries are.
#[derive(Debug, Clone)]
pub struct Tools {
    pub lt_data: PathBuf,
    pub lt_train: PathBuf,
    pub lt_report: PathBuf,
}

impl Tools {
    /// Looks next to `exe` (the running `lt`) first, then on PATH.
    pub fn find(exe: &Path) -> Result<Self, PipelineError> {
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let one = |tool: &str| -> Result<PathBuf, PipelineError> {
            let here = dir.join(tool);
            if here.is_file() {
                return Ok(here);
            }
            if let Some(path) = std::env::var_os("PATH") {
                for d in std::env::split_paths(&path) {
                    let p = d.join(tool);
                    if p.is_file() {
                        return Ok(p);
                    }
                }
            }
            Err(PipelineError::ToolMissing { tool: tool.into(), package: tool.into(), exe: exe.to_path_buf() })
        };
        Ok(Tools { lt_data: one("lt-data")?, lt_train: one("lt-train")?, lt_report: one("lt-report")? })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub only: Option<Only>,
    /// Ask the tools for plain log lines instead of progress bars.
    pub quiet_tools: bool,
}

/// What happened to each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    Ran,
    Resumed,
    Adopted,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// (step name, outcome), in order.
    pub steps: Vec<(String, Outcome)>,
    /// OUT/report/index.html when the report step ran or was up to date.
    pub report: Option<PathBuf>,
}

struct Ctx<'a> {
    p: &'a Pipeline,
    tools: &'a Tools,
    opts: &'a Options,
    total: usize,
    log: &'a mut dyn FnMut(&str),
}

impl Ctx<'_> {
    fn say(&mut self, n: usize, step: &str, msg: &str) {
        (self.log)(&format!("lt: [{n}/{}] {step}: {msg}", self.total));
    }
}

/// Runs the pipeline; `log` receives one progress line per step event.
pub fn run(p: &Pipeline, tools: &Tools, opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary, PipelineError> {
    let total = p.experiment.len() + 2;
    let mut cx = Ctx { p, tools, opts, total, log };
    let mut summary = Summary::default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PipelineError::Io { path, source }
    };
    // `out` holds data/, runs/ and report/, each replaced only when lt wrote it; `out` itself
    // must not be /, the home directory or the current directory (or an ancestor of it).
    lt_fs::guard::check_not_protected(&std::path::absolute(&p.out).map_err(io(&p.out))?)?;
    std::fs::create_dir_all(p.stamps_dir()).map_err(io(&p.stamps_dir()))?;

    let (data_hash, outcome) = data_step(&mut cx)?;
    if let Some(o) = outcome {
        summary.steps.push(("data".into(), o));
    }
    if opts.only == Some(Only::Build) {
        return Ok(summary);
    }
    let mut runs = Vec::new();
    for (i, e) in p.experiment.iter().enumerate() {
        let (run_hash, outcome) = train_step(&mut cx, i, &data_hash)?;
        if let Some(o) = outcome {
            summary.steps.push((format!("train {}", e.run_id()), o));
        }
        runs.push((e.run_id(), run_hash));
    }
    if opts.only == Some(Only::Train) {
        return Ok(summary);
    }
    let outcome = report_step(&mut cx, &runs, &data_hash)?;
    summary.steps.push(("report".into(), outcome));
    summary.report = Some(p.report_dir().join("index.html"));
    Ok(summary)
}

fn up_to_date(stamp: &Option<Stamp>, key: &str, output: &Path) -> bool {
    match stamp {
        Some(s) if s.key == key && s.state == State::Done && output.is_file() => {
            stamp::hash_file(output).ok().as_deref() == s.output.as_deref()
        }
        _ => false,
    }
}

/// Runs a tool; its output goes to this process's stdout/stderr.
fn spawn(step: &str, program: &Path, args: &[String]) -> Result<(), PipelineError> {
    let shown = format!(
        "{} {}",
        program.display(),
        args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")
    );
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    die_with_parent(&mut cmd);
    let status = cmd.status().map_err(|e| PipelineError::Step {
        step: step.into(),
        message: format!("cannot start `{shown}`: {e}; check that the binary exists and is executable"),
    })?;
    if !status.success() {
        return Err(PipelineError::StepFailed { step: step.into(), command: shown, status: status.to_string() });
    }
    Ok(())
}

/// A killed `lt run` takes its running tool with it (Linux: PR_SET_PDEATHSIG), so a rerun
/// never races a leftover `lt-train` writing the same run directory.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("lt exited while starting a step"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

fn data_step(cx: &mut Ctx) -> Result<(String, Option<Outcome>), PipelineError> {
    let p = cx.p;
    let dir = p.data_dir();
    let meta = dir.join("dataset.json");
    let settings = serde_json::to_value(&p.data).unwrap_or_default();
    let inputs = json!({ "data": settings });
    let key = stamp::hash_json(&inputs);
    let stamp_path = p.stamps_dir().join("data.json");
    let old = stamp::read(&stamp_path);
    let outcome = if up_to_date(&old, &key, &meta) {
        cx.say(1, "data", &format!("up to date ({})", dir.display()));
        None
    } else if cx.opts.only.is_some_and(|o| o != Only::Build) {
        return Err(PipelineError::Step {
            step: "data".into(),
            message: format!(
                "{} is missing or was built with other settings; run `lt run {}` (or `--only build`) first",
                dir.display(),
                p.file.display()
            ),
        });
    } else {
        fetch_if_missing(cx)?;
        cx.say(1, "data", &format!("building {} -> {}", p.data.source, dir.display()));
        let t = Instant::now();
        spawn("data", &cx.tools.lt_data, &build_args(cx.p, cx.opts.quiet_tools))?;
        let out = stamp::hash_file(&meta)?;
        stamp::write(&stamp_path, &Stamp { step: "data".into(), key, state: State::Done, output: Some(out), inputs })?;
        cx.say(1, "data", &format!("built in {:.1}s", t.elapsed().as_secs_f64()));
        Some(Outcome::Ran)
    };
    Ok((dataset_content_hash(&meta)?, outcome.or(Some(Outcome::UpToDate))))
}

/// The hash downstream steps depend on: dataset.json's `files` (name -> sha256) map.
fn dataset_content_hash(meta: &Path) -> Result<String, PipelineError> {
    let text = std::fs::read_to_string(meta).map_err(|source| PipelineError::Io { path: meta.into(), source })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| PipelineError::Step {
        step: "data".into(),
        message: format!("{}: not valid JSON ({e}); delete the directory and rerun", meta.display()),
    })?;
    let files = v.get("files").ok_or_else(|| PipelineError::Step {
        step: "data".into(),
        message: format!("{}: no `files` hashes (docs/FORMATS.md); rebuild it with lt-data", meta.display()),
    })?;
    Ok(stamp::hash_json(files))
}

fn fetch_if_missing(cx: &mut Ctx) -> Result<(), PipelineError> {
    let d = &cx.p.data;
    let Some((kind, arg)) = d.source.split_once(':') else { return Ok(()) };
    if kind == "synthetic" {
        return Ok(());
    }
    let path = PathBuf::from(arg);
    if path.exists() {
        return Ok(());
    }
    if !d.fetch {
        return Err(PipelineError::Step {
            step: "data".into(),
            message: format!(
                "the source {} does not exist; pass --source {kind}:DIR to a local copy, or set data.fetch = true to download it",
                path.display()
            ),
        });
    }
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    cx.say(1, "data", &format!("{} is missing: fetching {kind} into {}", path.display(), parent.display()));
    let mut args = vec!["fetch".to_string(), kind.to_string(), "--dir".into(), parent.display().to_string()];
    if cx.opts.quiet_tools {
        args.push("--quiet".into());
    }
    spawn("data (fetch)", &cx.tools.lt_data, &args)?;
    if !path.exists() {
        return Err(PipelineError::Step {
            step: "data (fetch)".into(),
            message: format!(
                "`lt-data fetch {kind}` finished but {} still does not exist: the archive extracts into a directory of its own name under {}; point data.source at it",
                path.display(),
                parent.display()
            ),
        });
    }
    Ok(())
}

/// The `lt-data build` command line of a pipeline's `[data]`.
pub fn build_args(p: &Pipeline, quiet: bool) -> Vec<String> {
    let d = &p.data;
    let mut a: Vec<String> =
        vec!["build".into(), "--source".into(), d.source.clone(), "--profile".into(), d.profile.to_string()];
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    opt("--imbalance", d.imbalance.map(|v| v.to_string()));
    opt("--n-max", d.n_max.map(|v| v.to_string()));
    opt("--counts", d.counts.as_ref().map(|c| c.iter().map(u64::to_string).collect::<Vec<_>>().join(",")));
    opt("--indices", d.indices.as_ref().map(|p| p.display().to_string()));
    opt("--resample", Some(d.resample.join(",")));
    opt("--epochs", d.epochs.map(|v| v.to_string()));
    opt("--beta", d.beta.map(|v| v.to_string()));
    opt("--seed", Some(d.seed.to_string()));
    opt("--size", d.size.map(|v| v.to_string()));
    opt("--test-list", d.test_list.as_ref().map(|p| p.display().to_string()));
    opt("--image-root", d.image_root.as_ref().map(|p| p.display().to_string()));
    opt("--test-per-class", d.test_per_class.map(|v| v.to_string()));
    opt("--synthetic-seed", d.synthetic_seed.map(|v| v.to_string()));
    opt("--val-per-class", d.val_per_class.map(|v| v.to_string()));
    opt("--out", Some(p.data_dir().display().to_string()));
    if d.shuffle_classes {
        a.push("--shuffle-classes".into());
    }
    if d.coarse {
        a.push("--coarse".into());
    }
    a.push("--force".into());
    if quiet {
        a.push("--quiet".into());
    }
    a
}

fn train_step(cx: &mut Ctx, i: usize, data_hash: &str) -> Result<(String, Option<Outcome>), PipelineError> {
    let p = cx.p;
    let e = &p.experiment[i];
    let n = i + 2;
    let step = format!("train {}", e.run_id());
    let dir = &e.config.out;
    let run_json = dir.join("run.json");
    let config = serde_json::to_value(&e.config).unwrap_or_default();
    let mut settings = config.clone();
    if let Some(m) = settings.as_object_mut() {
        m.remove("data");
        m.remove("out");
    }
    let inputs = json!({ "train": settings, "dataset_files": data_hash });
    let key = stamp::hash_json(&inputs);
    let stamp_path = p.stamps_dir().join(format!("train-{}.json", e.run_id()));
    let old = stamp::read(&stamp_path);
    let done = |out: String, inputs: serde_json::Value, key: String| Stamp {
        step: step.clone(),
        key,
        state: State::Done,
        output: Some(out),
        inputs,
    };
    if up_to_date(&old, &key, &run_json) {
        cx.say(n, &step, &format!("up to date ({})", dir.display()));
        return Ok((stamp::hash_file(&run_json)?, None));
    }
    if cx.opts.only == Some(Only::Report) {
        return Err(PipelineError::Step {
            step,
            message: format!("{} is missing or out of date; run the train step first", dir.display()),
        });
    }
    let same_attempt = old.as_ref().is_some_and(|s| s.key == key && s.state == State::Running);
    // Killed after lt-train wrote run.json but before the stamp: adopt the finished run.
    if same_attempt && finished_by_this_attempt(&run_json, &stamp_path, &e.config) {
        let out = stamp::hash_file(&run_json)?;
        stamp::write(&stamp_path, &done(out.clone(), inputs, key))?;
        cx.say(n, &step, &format!("finished before the interruption ({})", dir.display()));
        return Ok((out, Some(Outcome::Adopted)));
    }
    let non_empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    // lt-train writes into RUN.partial until the run is finished.
    let interrupted = lt_fs::Staging::interrupted(dir, &lt_fs::owners::RUN);
    let config_file = p.configs_dir().join(format!("{}.toml", e.run_id()));
    let text = toml::to_string(&e.config).map_err(|err| PipelineError::Step {
        step: step.clone(),
        message: format!("cannot write the training config as TOML: {err}"),
    })?;
    stamp::write_atomic(&config_file, text.as_bytes())?;
    // The experiment's name labels the run in lt-report's legends and tables.
    let mut args = vec!["--config".to_string(), config_file.display().to_string(), "--label".into(), e.name.clone()];
    let outcome = if interrupted && same_attempt {
        args.push("--resume".into());
        cx.say(n, &step, &format!("resuming the interrupted run in {}", dir.display()));
        Outcome::Resumed
    } else {
        if non_empty || interrupted {
            // lt-train replaces only a run directory it wrote.
            args.push("--force".into());
            cx.say(n, &step, &format!("settings or data changed: retraining from scratch in {}", dir.display()));
        } else {
            cx.say(n, &step, &format!("training -> {}", dir.display()));
        }
        Outcome::Ran
    };
    if cx.opts.quiet_tools {
        args.push("--quiet".into());
    }
    stamp::write(
        &stamp_path,
        &Stamp { step: step.clone(), key: key.clone(), state: State::Running, output: None, inputs: inputs.clone() },
    )?;
    let t = Instant::now();
    spawn(&step, &cx.tools.lt_train, &args)?;
    let out = stamp::hash_file(&run_json)?;
    stamp::write(&stamp_path, &done(out.clone(), inputs, key))?;
    let fin = read_final(&run_json);
    cx.say(n, &step, &format!("done in {:.1}s{fin}", t.elapsed().as_secs_f64()));
    Ok((out, Some(outcome)))
}

/// run.json exists, was written after the stamp that started this attempt (a fresh start
/// wipes the run directory; a resume keeps settings), and records this run's directory and
/// epoch count. (Floats are not compared: lt-train may print them through another width.)
fn finished_by_this_attempt(run_json: &Path, stamp_path: &Path, config: &TrainConfig) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(run_t), Some(stamp_t)) = (modified(run_json), modified(stamp_path)) else { return false };
    if run_t < stamp_t {
        return false;
    }
    let Ok(record) = RunRecord::read_file(run_json) else { return false };
    let r = &record.config;
    (&r.out, r.epochs, &r.arch, r.loss, r.weights, &r.resample)
        == (&config.out, config.epochs, &config.arch, config.loss, config.weights, &config.resample)
}

fn read_final(run_json: &Path) -> String {
    match RunRecord::read_file(run_json) {
        Ok(r) => format!(": test accuracy {:.4}, balanced {:.4}", r.final_metrics.overall, r.final_metrics.balanced),
        Err(_) => String::new(),
    }
}

fn report_step(cx: &mut Ctx, runs: &[(String, String)], data_hash: &str) -> Result<Outcome, PipelineError> {
    let p = cx.p;
    let n = cx.total;
    let dir = p.report_dir();
    let index = dir.join("index.html");
    let settings = serde_json::to_value(&p.report).unwrap_or_default();
    // An edited literature file makes a new report.
    let literature = match &p.report.literature {
        Some(f) => Some(stamp::hash_file(f)?),
        None => None,
    };
    let inputs = json!({ "report": settings, "runs": runs, "dataset_files": data_hash, "literature": literature });
    let key = stamp::hash_json(&inputs);
    let stamp_path = p.stamps_dir().join("report.json");
    let old = stamp::read(&stamp_path);
    if up_to_date(&old, &key, &index) {
        cx.say(n, "report", &format!("up to date ({})", index.display()));
        return Ok(Outcome::UpToDate);
    }
    cx.say(n, "report", &format!("comparing {} runs -> {}", runs.len(), dir.display()));
    // Written into report.partial and swapped in; replaces only a report lt wrote.
    let staging = lt_fs::Staging::begin(&dir, lt_fs::owners::REPORT, true)?;
    let partial = staging.path().to_path_buf();
    let r = &p.report;
    let mut args = vec!["--runs".to_string()];
    args.extend(p.experiment.iter().map(|e| e.config.out.display().to_string()));
    args.extend(["--data".into(), p.data_dir().display().to_string()]);
    args.extend(["--out".into(), partial.display().to_string()]);
    args.extend(["--shots".into(), r.shots.to_string()]);
    args.extend(["--many-above".into(), r.many_above.to_string(), "--few-below".into(), r.few_below.to_string()]);
    if let Some(t) = &r.title {
        args.extend(["--title".into(), t.clone()]);
    }
    if r.linear_counts {
        args.push("--linear-counts".into());
    }
    if let Some(f) = &r.literature {
        args.extend(["--literature".into(), f.display().to_string()]);
    }
    spawn("report", &cx.tools.lt_report, &args)?;
    staging.commit()?;
    let out = stamp::hash_file(&index)?;
    stamp::write(&stamp_path, &Stamp { step: "report".into(), key, state: State::Done, output: Some(out), inputs })?;
    cx.say(n, "report", &format!("written: {}", index.display()));
    Ok(Outcome::Ran)
}
