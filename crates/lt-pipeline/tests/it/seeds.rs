//! A pipeline with `seeds` and a validation split, end to end through the real binaries:
//! every experiment runs once per seed under its name, each run chooses its reported epoch on
//! the dataset's validation split (and says so in run.json), and the report aggregates seeds.

use lt_format::RunRecord;
use lt_format::run::SelectionRule;

use crate::fixture::{lt_run, require_tools, text, tiny_pipeline};

#[test]
fn a_pipeline_with_seeds_and_a_validation_split_runs_end_to_end() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let file = tiny_pipeline(tmp.path(), &out, &[("ce", ""), ("ldam", "loss = \"ldam\"")]);
    // Seeds at the top, a balanced validation split held out before the long-tail cut.
    let text_of = std::fs::read_to_string(&file).unwrap();
    let literature = tmp.path().join("literature.toml");
    std::fs::write(
        &literature,
        "[[row]]\nmethod = \"LDAM-DRW\"\ndataset = \"CIFAR-10-LT\"\nimbalance = 100\naccuracy = 77.0\nsource = \"Cao et al. 2019\"\n",
    )
    .unwrap();
    let text_of = format!(
        "seeds = [0, 1]\n{}\n[report]\nliterature = \"{}\"\n",
        text_of.replace("[data]\n", "[data]\nval_per_class = 4\n"),
        literature.display()
    );
    std::fs::write(&file, text_of).unwrap();

    let o = lt_run(tmp.path(), &["run", file.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o));

    let mut balanced = Vec::new();
    for name in ["ce", "ldam"] {
        let mut finals = Vec::new();
        for seed in [0u64, 1] {
            let dir = out.join("runs").join(name).join(format!("seed-{seed}"));
            let record = RunRecord::read(&dir).unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), text(&o)));
            assert_eq!(record.label.as_deref(), Some(name));
            assert_eq!(record.config.seed, seed);
            assert_eq!(record.val_counts, vec![4; 10], "the dataset's balanced validation split");
            let selection = record.selection.clone().expect("run.json says how its epoch was chosen");
            assert_eq!(selection.rule, SelectionRule::BestValidationBalancedAccuracy);
            assert_eq!(selection.validation.as_deref(), Some("dataset"));
            assert_eq!(record.final_metrics.epoch, selection.epoch);
            // The last epoch's test metrics are there whenever validation chose another one.
            match &record.last {
                Some(last) => assert_eq!(last.epoch, record.config.epochs),
                None => assert_eq!(selection.epoch, record.config.epochs),
            }
            finals.push(record.final_metrics.balanced);
        }
        assert!(finals.iter().all(|b| b.is_finite()));
        balanced.push((name, finals));
    }
    // One report over all four runs.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report").join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"].as_array().map(Vec::len), Some(4), "{summary}");
    // Seeds of one experiment are aggregated: mean and sample std over the two seeds.
    let experiments = summary["experiments"].as_array().expect("experiments");
    assert_eq!(experiments.len(), 2, "{summary}");
    for (name, finals) in &balanced {
        let e = experiments.iter().find(|e| e["label"] == *name).unwrap_or_else(|| panic!("{name}: {summary}"));
        assert_eq!(e["n"], 2);
        let mean = (finals[0] + finals[1]) / 2.0;
        let std = ((finals[0] - mean).powi(2) + (finals[1] - mean).powi(2)).sqrt();
        let got = &e["balanced_accuracy"];
        assert!((got["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{name}: {got}");
        assert!((got["std"].as_f64().unwrap() - std).abs() < 1e-9, "{name}: {got}");
    }
    // The pipeline's literature file is printed beside lt's numbers.
    assert_eq!(summary["literature"][0]["method"], "LDAM-DRW", "{summary}");
}
