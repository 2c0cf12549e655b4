use crate::fixtures::{FIGURES, read_svg, report, two_runs};

const TITLES: [(&str, &str); 7] = [
    ("class-distribution.svg", "Class distribution"),
    ("curves-accuracy.svg", "Accuracy per epoch"),
    ("curves-loss.svg", "Loss per epoch"),
    ("confusion.svg", "Confusion matrices (row-normalised)"),
    ("per-class-accuracy.svg", "Per-class accuracy (head → tail)"),
    ("shot-groups.svg", "Accuracy by shot group (head/mid/tail)"),
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
    // Shot groups name the groups with their class counts (CIFAR-10-LT: no class under 20
    // images, so auto picks head/mid/tail thirds 4/3/3).
    let shots = read_svg(&out, "shot-groups.svg");
    for t in ["head", "mid", "tail", "balanced", "4 classes", "3 classes"] {
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
