//! The report's figures, drawn with plotters' SVG backend (text stays `<text>`: no fonts
//! needed). One file per figure; [`chart`] holds what they share (the SVG canvas, the header
//! with title and legend, axis and mesh style, class names under an axis), [`class_chart`]
//! the grouped bars over classes that two figures use, [`label_layout`] where point labels go.
//!
//! To add a figure: a file with a `pub fn my_figure(data: &ReportData) -> Result<Figure,
//! ReportError>` that calls [`chart::render`], and one line in [`all_figures`].

mod chart;
mod class_chart;
mod class_distribution;
mod confusion;
mod curves;
mod label_layout;
mod per_class;
mod precision_recall;
mod shot_groups;

pub use class_distribution::class_distribution;
pub use confusion::confusion_matrices;
pub use label_layout::{LabelBox, place_label};
pub use per_class::per_class_accuracy;
pub use precision_recall::precision_recall;
pub use shot_groups::shot_groups;

use crate::ReportError;
use crate::compare::ReportData;
use curves::{Curve, curves};

/// A rendered figure: file name, title (also its caption) and SVG text.
#[derive(Debug, Clone)]
pub struct Figure {
    pub file: &'static str,
    pub title: String,
    pub caption: String,
    pub svg: String,
}

/// All figures of the report, in the order of the issue: class distribution, accuracy and
/// loss curves, confusion matrices, per-class accuracy, shot groups, precision vs recall.
pub fn all_figures(data: &ReportData) -> Result<Vec<Figure>, ReportError> {
    Ok(vec![
        class_distribution(data)?,
        curves(data, Curve::Accuracy)?,
        curves(data, Curve::Loss)?,
        confusion_matrices(data)?,
        per_class_accuracy(data)?,
        shot_groups(data)?,
        precision_recall(data)?,
    ])
}

/// Class names in head-to-tail order.
fn names_in_order(data: &ReportData) -> Vec<String> {
    data.order.iter().map(|&c| data.class_names[c].clone()).collect()
}

/// Per-class values in head-to-tail order.
fn in_order<T: Copy>(data: &ReportData, values: &[T]) -> Vec<T> {
    data.order.iter().map(|&c| values[c]).collect()
}
