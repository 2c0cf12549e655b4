//! Figure 4, per-class accuracy.

use super::class_chart::{ClassSeries, Scale, class_chart};
use super::{Figure, in_order, names_in_order};
use crate::ReportError;
use crate::compare::ReportData;
use crate::experiments::Spread;
use crate::style::color;

/// Figure 4: per-class accuracy, bars grouped by class (head to tail), one colour per
/// experiment: the mean over its seeds, with ± one sample std whiskers when it has several.
pub fn per_class_accuracy(data: &ReportData) -> Result<Figure, ReportError> {
    let seeds = data.has_seeds();
    let series: Vec<ClassSeries> = data
        .experiments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let per_class: Vec<Spread> = (0..data.class_names.len())
                .map(|c| e.spread(&data.runs, |_, r| r.report.per_class_accuracy[c]))
                .collect();
            let spread = (e.runs.len() > 1).then(|| {
                in_order(data, &per_class)
                    .iter()
                    .map(|s| s.std_range())
                    .map(|(lo, hi)| (lo.max(0.0), hi.min(1.0)))
                    .collect()
            });
            ClassSeries {
                label: e.label.clone(),
                color: color(i),
                values: in_order(data, &per_class).iter().map(|s| s.mean).collect(),
                spread,
            }
        })
        .collect();
    let title = "Per-class accuracy (head → tail)";
    let subtitle = if seeds {
        "final test predictions, mean over each experiment's seeds (whiskers: ± one sample std); classes ordered by training images"
    } else {
        "final test predictions; classes ordered by training images"
    };
    let svg = class_chart(
        "per-class accuracy",
        title,
        Some(subtitle),
        "accuracy (recall)",
        &names_in_order(data),
        &series,
        Scale::Share,
    )?;
    let caption = if seeds {
        "Accuracy on the test images of each class, head classes on the left: the mean over each experiment's seeds, \
         whiskers ± one sample standard deviation (clipped to 0–100%)."
    } else {
        "Accuracy on the test images of each class, head classes on the left."
    };
    Ok(Figure { file: "per-class-accuracy.svg", title: title.to_string(), caption: caption.to_string(), svg })
}
