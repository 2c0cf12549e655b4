//! notebooks/explore-runs.ipynb executes (nbconvert) on the outputs of a small variant of the
//! demo pipeline, so the notebook cannot rot.

use std::process::Command;

use crate::fixture::{lt_run, repo_root, require_tools, text};

#[test]
fn notebook_executes_on_the_demo_pipeline_outputs() {
    let python = std::env::var("LT_TEST_PYTHON").expect(
        "LT_TEST_PYTHON is unset: point it at a Python with polars, matplotlib, nbconvert and ipykernel \
         (bash scripts/install-test-deps.sh makes .venv-test; scripts/test.sh exports it)",
    );
    require_tools();
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    // The demo pipeline, made small: fewer images and epochs (DRW moved inside the run).
    let o = lt_run(
        dir.path(),
        &[
            "run",
            root.join("pipelines/demo.toml").to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "data.source=synthetic:40",
            "--set",
            "data.imbalance=10",
            "--set",
            "data.test_per_class=10",
            "--set",
            "train.epochs=2",
            "--set",
            "train.batch_size=16",
            "--set",
            "train.warmup=0",
            "--set",
            "train.threads=1",
            "--set",
            "experiment.ldam-drw.drw=2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let figures = dir.path().join("figures");
    let o = Command::new(&python)
        .args(["-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"])
        .arg("--ExecutePreprocessor.timeout=600")
        .arg("--output-dir")
        .arg(dir.path())
        .args(["--output", "executed.ipynb"])
        .arg(root.join("notebooks/explore-runs.ipynb"))
        .env("LT_PIPELINE_OUT", &out)
        .env("LT_NOTEBOOK_FIGURES", &figures)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(o.status.success(), "the notebook failed:\n{}", text(&o));
    let executed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("executed.ipynb")).unwrap()).unwrap();
    let cells = executed["cells"].as_array().unwrap();
    let code: Vec<_> = cells.iter().filter(|c| c["cell_type"] == "code").collect();
    assert!(code.iter().all(|c| c["execution_count"].is_number()), "a code cell did not run");
    for c in &code {
        for o in c["outputs"].as_array().unwrap() {
            assert_ne!(o["output_type"], "error", "{o}");
        }
    }
    // The summary table lists the four experiments.
    let rendered = serde_json::to_string(&executed).unwrap();
    for name in ["baseline", "resample", "reweight", "ldam-drw"] {
        assert!(rendered.contains(name), "{name} missing from the executed notebook");
    }
    for fig in ["per-class-accuracy", "curves", "accuracy-vs-count"] {
        let bytes = std::fs::read(figures.join(format!("{fig}.png"))).unwrap_or_else(|e| panic!("{fig}.png: {e}"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 1000, "{fig}.png is not a plot");
    }
}
