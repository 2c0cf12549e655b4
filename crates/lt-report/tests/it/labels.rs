use lt_report::class_axis_labels;
use lt_report::figures::{LabelBox, place_label};
use lt_report::synthetic::class_names;

use crate::fixtures::{SvgText, read_svg, report, two_runs};

#[test]
fn axis_labels_are_horizontal_when_they_fit_and_thinned_when_rotated() {
    let names: Vec<String> = ["cat", "dog"].map(String::from).to_vec();
    let l = class_axis_labels(&names, 80.0);
    assert!(!l.rotated && l.step == 1);
    let l = class_axis_labels(&class_names(100), 12.0);
    assert!(l.rotated);
    assert!(l.step as f64 * 12.0 >= 1.3 * l.font_px, "step {} too small", l.step);
    let l = class_axis_labels(&class_names(100), 4.0);
    assert!(l.step >= 4, "{l:?}");
    let long = vec!["a very long class name indeed".to_string()];
    assert_eq!(class_axis_labels(&long, 10.0).names[0].chars().count(), 16);
}

/// Asserts that no two of these texts overlap, using the same width estimate as the layout
/// (rotated texts are as wide as their font size).
fn assert_no_overlap(file: &str, texts: &[&SvgText], at_least: usize) {
    assert!(texts.len() >= at_least, "{file}: only {} class names found to check", texts.len());
    let boxes: Vec<(f64, f64, f64, f64, &str)> = texts
        .iter()
        .map(|t| {
            let (w, h) = (0.6 * t.font_size * t.content.chars().count() as f64, t.font_size);
            let (w, h) = if t.rotated { (h, w) } else { (w, h) };
            let x0 = match (t.rotated, t.anchor.as_str()) {
                (true, _) => t.x - w / 2.0,
                (false, "middle") => t.x - w / 2.0,
                (false, "end") => t.x - w,
                _ => t.x,
            };
            let y0 = if t.rotated { t.y } else { t.y - h / 2.0 };
            (x0, y0, x0 + w, y0 + h, t.content.as_str())
        })
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let overlap = a.0 < b.2 - 0.5 && b.0 < a.2 - 0.5 && a.1 < b.3 - 0.5 && b.1 < a.3 - 0.5;
            assert!(!overlap, "{file}: labels {:?} and {:?} overlap: {a:?} {b:?}", a.4, b.4);
        }
    }
}

#[test]
fn class_names_never_overlap_for_10_and_100_classes() {
    for classes in [10, 100] {
        let f = two_runs(classes);
        let (out, _) = report(&f);
        // Precision vs recall names points only up to 20 classes, and leaves out a name that
        // has no free place.
        let pr_names = if classes <= 20 { classes / 2 } else { 0 };
        for (file, at_least) in
            [("class-distribution.svg", 9), ("per-class-accuracy.svg", 9), ("precision-recall.svg", pr_names)]
        {
            let svg = read_svg(&out, file);
            let names: Vec<&SvgText> = svg.texts.iter().filter(|t| f.names.contains(&t.content)).collect();
            assert_no_overlap(file, &names, at_least);
        }
        // Confusion matrices: column names (below each panel) and row names (left of it) are
        // checked apart, per panel row of the grid.
        let svg = read_svg(&out, "confusion.svg");
        let is_name = |t: &&SvgText| f.names.contains(&t.content);
        let cols: Vec<&SvgText> =
            svg.texts.iter().filter(is_name).filter(|t| t.rotated || t.anchor == "middle").collect();
        assert_no_overlap("confusion.svg (columns)", &cols, 9);
        let rows: Vec<&SvgText> =
            svg.texts.iter().filter(is_name).filter(|t| !t.rotated && t.anchor == "end").collect();
        assert_no_overlap("confusion.svg (rows)", &rows, 9);
    }
}

#[test]
fn label_placement_avoids_other_labels_and_points() {
    let bounds = LabelBox { x0: 0, y0: 0, x1: 400, y1: 400 };
    let first = place_label("cat", 10.0, (100, 100), 5, bounds, &[], &[(100, 100)]).unwrap();
    assert!(first.x0 > 100, "right of the point first: {first:?}");
    // The right side is taken: the next label for a point at the same place goes elsewhere.
    let second = place_label("dog", 10.0, (100, 100), 5, bounds, &[first], &[(100, 100)]).unwrap();
    assert_ne!(first, second);
    // Surrounded by points everywhere: no position, no overlap.
    let crowd: Vec<(i32, i32)> = (-6..=6).flat_map(|i| (-6..=6).map(move |j| (100 + i * 6, 100 + j * 6))).collect();
    assert!(place_label("cat", 10.0, (100, 100), 5, bounds, &[], &crowd).is_none());
    // In a corner only the inside positions are candidates: left of and below (0, 0) are out.
    let corner = place_label("cat", 10.0, (2, 398), 2, bounds, &[], &[]);
    assert!(corner.is_none_or(|b| b.x0 >= 0 && b.y1 <= 400), "{corner:?}");
    assert!(
        place_label("a long class name", 10.0, (5, 5), 2, LabelBox { x0: 0, y0: 0, x1: 30, y1: 30 }, &[], &[])
            .is_none()
    );
}
