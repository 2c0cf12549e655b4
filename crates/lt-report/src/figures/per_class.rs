//! Figure 4, per-class accuracy.

use super::class_chart::{ClassSeries, Scale, class_chart};
use super::{Figure, in_order, names_in_order};
use crate::ReportError;
use crate::compare::ReportData;
use crate::style::color;

/// Figure 4: per-class accuracy, bars grouped by class (head to tail), one colour per run.
pub fn per_class_accuracy(data: &ReportData) -> Result<Figure, ReportError> {
    let series: Vec<ClassSeries> = data
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| ClassSeries {
            label: data.labels[i].clone(),
            color: color(i),
            values: in_order(data, &r.report.per_class_accuracy),
        })
        .collect();
    let title = "Per-class accuracy (head → tail)";
    let svg = class_chart(
        "per-class accuracy",
        title,
        Some("final test predictions; classes ordered by training images"),
        "accuracy (recall)",
        &names_in_order(data),
        &series,
        Scale::Share,
    )?;
    Ok(Figure {
        file: "per-class-accuracy.svg",
        title: title.to_string(),
        caption: "Accuracy on the test images of each class, head classes on the left.".to_string(),
        svg,
    })
}
