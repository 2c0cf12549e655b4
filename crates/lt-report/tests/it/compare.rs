use crate::fixtures::{FIGURES, read_svg, report, two_runs};

#[test]
fn two_runs_that_differ_only_in_the_loss_appear_in_every_figure() {
    let f = two_runs(10);
    let (out, summary) = report(&f);
    // `out` differs too but names each run's own directory: it is not a setting.
    assert_eq!(summary.differing_settings, vec!["train.loss".to_string()]);
    let labels: Vec<&str> = summary.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["loss=ce", "loss=cb"]);
    for file in FIGURES {
        let svg = read_svg(&out, file);
        for label in &labels {
            assert!(
                svg.has_text_containing(label),
                "{file} does not show run {label:?}: {:?}",
                svg.texts.iter().map(|t| &t.content).collect::<Vec<_>>()
            );
        }
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(
            "| run | train.loss | overall % | balanced % | head % | mid % | tail % | G-mean | macro-F1 | ECE | epochs run |"
        ),
        "{md}"
    );
    assert!(md.contains("| loss=ce | ce |") && md.contains("| loss=cb | cb |"), "{md}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for label in &labels {
        assert!(html.contains(&format!("<td>{label}</td>")), "index.html table lacks {label}");
    }
    assert_eq!(html.matches("<svg").count(), FIGURES.len(), "index.html inlines every figure once");
}

#[test]
fn explicit_labels_win_and_duplicates_are_told_apart() {
    let f = two_runs(10);
    for (dir, label) in f.runs.iter().zip(["baseline", "baseline"]) {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["label"] = label.into();
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let (_, summary) = report(&f);
    let labels: Vec<&str> = summary.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["baseline (run-ce)", "baseline (run-cb)"]);
}

#[test]
fn settings_read_as_written() {
    // lt-train widens f32 options to f64 in run.json: 0.05f32 is 0.05000000074505806.
    let f = two_runs(10);
    for (dir, lr) in f.runs.iter().zip([f64::from(0.05f32), 0.1]) {
        let path = dir.join("run.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["config"]["train"]["lr"] = lr.into();
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    let (_, summary) = report(&f);
    let labels: Vec<&str> = summary.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, vec!["loss=ce, lr=0.05", "loss=cb, lr=0.1"]);
    assert_eq!(summary.differing_settings, vec!["train.loss".to_string(), "train.lr".to_string()]);
}
