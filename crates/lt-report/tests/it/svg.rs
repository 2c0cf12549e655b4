use lt_report::synthetic::{SyntheticRun, class_names, write_run};
use lt_report::{Options, ShotChoice, generate};

use crate::fixtures::{FIGURES, read_svg, report, two_runs};

const TITLES: [(&str, &str); 7] = [
    ("class-distribution.svg", "Class distribution"),
    ("curves-accuracy.svg", "Accuracy per epoch"),
    ("curves-loss.svg", "Loss per epoch"),
    ("confusion.svg", "Confusion matrices (row-normalised)"),
    ("per-class-accuracy.svg", "Per-class accuracy (head → tail)"),
    ("shot-groups.svg", "Accuracy by shot group (head/mid/tail, many/medium/few)"),
    ("precision-recall.svg", "Per-class precision vs recall"),
];

#[test]
fn ten_classes_every_figure_is_xml_with_its_title_and_the_class_names() {
    let f = two_runs(10);
    let (out, summary) = report(&f);
    assert_eq!(summary.figures, FIGURES.map(String::from).to_vec());
    for (file, title) in TITLES {
        let svg = read_svg(&out, file);
        assert!(
            svg.has_text(title),
            "{file}: no title {title:?} in {:?}",
            svg.texts.iter().map(|t| &t.content).collect::<Vec<_>>()
        );
        assert!(svg.width > 0.0 && svg.height > 0.0);
    }
    // Figures over classes name every one of the 10 classes.
    for file in ["class-distribution.svg", "per-class-accuracy.svg", "confusion.svg", "precision-recall.svg"] {
        let svg = read_svg(&out, file);
        for name in &f.names {
            assert!(svg.has_text(name), "{file}: class {name} is not named");
        }
    }
    // The confusion matrices are annotated with row shares; with 10 classes every cell fits.
    let conf = read_svg(&out, "confusion.svg");
    let diagonal = format!("{:.2}", summary.runs[0].report.per_class_accuracy[0]);
    assert!(conf.has_text(&diagonal), "confusion.svg lacks the annotation {diagonal}");
    // Shot groups name the groups with their class counts: head/mid/tail thirds 4/3/3 and
    // beside them many/medium/few (CIFAR-10-LT at IF 100, 5000 to 50 images: 8 classes over
    // 100, 2 from 20 to 100, none under 20).
    let shots = read_svg(&out, "shot-groups.svg");
    for t in [
        "head",
        "mid",
        "tail",
        "many",
        "medium",
        "few",
        "balanced",
        "4 classes",
        "3 classes",
        "8 classes",
        "2 classes",
        "0 classes",
    ] {
        assert!(shots.has_text(t), "shot-groups.svg lacks {t:?}");
    }
    // The log-scale class distribution shows the source, the subset and both manifests.
    let dist = read_svg(&out, "class-distribution.svg");
    for t in ["source", "resampled: oversample (per epoch)", "long-tail subset = resampled: none (per epoch)"] {
        assert!(dist.has_text_containing(t), "class-distribution.svg lacks {t:?}");
    }
    assert!(dist.has_text("1000") && dist.has_text("10"), "log axis ticks 10, 100, 1000 expected");
}

#[test]
fn hundred_classes_stay_xml_and_name_the_head_and_thinned_classes() {
    let f = two_runs(100);
    let (out, _) = report(&f);
    for (file, title) in TITLES {
        let svg = read_svg(&out, file);
        assert!(svg.has_text(title), "{file}: no title {title:?}");
    }
    for file in ["class-distribution.svg", "per-class-accuracy.svg", "confusion.svg"] {
        let svg = read_svg(&out, file);
        let named = f.names.iter().filter(|n| svg.has_text(n)).count();
        assert!(svg.has_text("class-00"), "{file}: the head class is not named");
        assert!(
            (20..=100).contains(&named),
            "{file}: {named} of 100 class names shown; expected a thinned but useful axis"
        );
    }
    // 100 classes: no per-cell numbers in the confusion matrices (cells are ~6 px).
    let conf = read_svg(&out, "confusion.svg");
    assert!(
        !conf.texts.iter().any(|t| t.content.starts_with("0.") && t.content.len() == 4),
        "cells annotated at 100 classes"
    );
}

#[test]
fn shot_groups_by_the_standard_thresholds_sit_beside_the_thirds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = SyntheticRun::long_tailed(class_names(10), 5);
    // > 100: 5 classes, 20..=100: 3, < 20: 2; thirds: 4/3/3.
    run.train_counts = vec![500, 300, 150, 120, 101, 90, 60, 30, 19, 5];
    let dir = tmp.path().join("run");
    write_run(&dir, &run).unwrap();
    let out = tmp.path().join("report");
    let summary = generate(&Options::new(vec![dir.clone()], &out)).unwrap();
    assert_eq!(summary.group_names, ["head", "mid", "tail", "many", "medium", "few"]);
    let r = &summary.runs[0];
    let mean =
        |classes: &[usize]| classes.iter().map(|&c| r.report.per_class_accuracy[c]).sum::<f64>() / classes.len() as f64;
    let by_threshold = [vec![0, 1, 2, 3, 4], vec![5, 6, 7], vec![8, 9]];
    let thirds = [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]];
    for (groups, want) in r.shot_groups.iter().zip([&thirds, &by_threshold]) {
        for (g, classes) in groups.groups.iter().zip(want.iter()) {
            assert_eq!(&g.classes, classes, "{}", g.name);
        }
    }
    let want: Vec<f64> = thirds.iter().chain(&by_threshold).map(|c| mean(c)).collect();
    for (got, want) in r.headline.group_accuracy.iter().zip(&want) {
        assert!((got - want).abs() < 1e-12, "{:?} vs {want:?}", r.headline.group_accuracy);
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| head % | mid % | tail % | many % | medium % | few % |"), "{md}");
    assert!(md.contains("more than 100, 20 to 100, fewer than 20 training images"), "{md}");
    let svg = read_svg(&out, "shot-groups.svg");
    // Bars are annotated with their percentage: the few group's too.
    for t in ["5 classes", "4 classes", "3 classes", "2 classes", &format!("{:.1}", 100.0 * want[5])] {
        assert!(svg.has_text(t), "shot-groups.svg lacks {t:?}");
    }

    // One split only, when asked for.
    let mut options = Options::new(vec![dir], tmp.path().join("thirds"));
    options.shots = ShotChoice::Thirds;
    let summary = generate(&options).unwrap();
    assert_eq!(summary.group_names, ["head", "mid", "tail"]);
    assert_eq!(summary.runs[0].headline.group_accuracy.len(), 3);
}
