//! Times `lt_report::generate` on synthetic runs (docs/PERFORMANCE.md, "lt-report").
//!
//! `cargo run --release -p lt-report --example bench_report -- [CLASSES] [RUNS] [REPEATS] [DIR]`
//! (defaults 100 classes, 10 runs, 5 repeats, a directory under the system temp dir). The
//! fixture runs (100 test images per class, 30 epochs) and a dataset with two manifests are
//! written once; the report is then generated REPEATS times into DIR/report.

use std::path::PathBuf;
use std::time::Instant;

use lt_report::synthetic::{SyntheticRun, class_names, write_dataset, write_run};
use lt_report::{Options, generate};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).map(|s| s.parse()).transpose().map(|v| v.unwrap_or(default));
    let (classes, runs, repeats) = (arg(0, 100)?, arg(1, 10)?, arg(2, 5)?);
    let dir = args.get(3).map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("lt-report-bench"));
    let names = class_names(classes);
    let mut run_dirs = Vec::new();
    let losses = ["ce", "cb", "focal", "ldam", "balanced-softmax"];
    let samplers = ["none", "oversample"];
    for r in 0..runs {
        let mut run = SyntheticRun::long_tailed(names.clone(), r as u64);
        run.epochs = 30;
        run.skill = 0.7 + 0.02 * r as f64;
        run.config = serde_json::json!({"loss": losses[r % 5], "sampler": samplers[(r / 5) % 2], "epochs": 30});
        let d = dir.join(format!("run-{r:02}"));
        write_run(&d, &run)?;
        run_dirs.push(d);
    }
    let counts = SyntheticRun::long_tailed(names.clone(), 0).train_counts;
    write_dataset(&dir.join("data"), &names, &vec![5000; classes], &counts, &[("none", 30), ("oversample", 30)])?;
    let mut options = Options::new(run_dirs, dir.join("report"));
    options.data = Some(dir.join("data"));
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        generate(&options)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let size: u64 = std::fs::read_dir(dir.join("report"))?
        .map(|e| e.map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)))
        .sum::<Result<u64, _>>()?;
    println!(
        "{runs} runs x {classes} classes: min {:.3} s, median {:.3} s, max {:.3} s over {} repeats; report {:.1} MiB in {}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len(),
        size as f64 / (1 << 20) as f64,
        dir.join("report").display()
    );
    Ok(())
}
