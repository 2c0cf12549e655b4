//! Figure 5, accuracy by shot group.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::Figure;
use super::chart::{Ticked, XAxis, draw_mesh, header, header_height, render, run_legend, share_label, share_ticks};
use crate::ReportError;
use crate::compare::ReportData;
use crate::style::{color, percent, text_at, text_width};

/// Figure 5: accuracy of the head/mid/tail and the many/medium/few groups (each split the
/// report shows) and the balanced accuracy.
pub fn shot_groups(data: &ReportData) -> Result<Figure, ReportError> {
    let names = data.group_names();
    let group_classes: Vec<usize> = data.shots.first().map_or(vec![0; names.len()], |splits| {
        splits.iter().flat_map(|s| s.groups.iter().map(|g| g.classes.len())).collect()
    });
    let mut categories: Vec<(String, String)> =
        names.iter().zip(&group_classes).map(|(n, &k)| (n.to_string(), classes_text(k))).collect();
    categories.push(("balanced".to_string(), "all classes".to_string()));
    let values: Vec<Vec<f64>> = data
        .runs
        .iter()
        .zip(&data.shots)
        .map(|(r, splits)| {
            let mut v: Vec<f64> = splits.iter().flat_map(|s| s.accuracies()).collect();
            v.push(r.report.balanced_accuracy);
            v
        })
        .collect();
    let title = format!(
        "Accuracy by shot group ({})",
        data.splits.iter().map(|s| s.names().join("/")).collect::<Vec<_>>().join(", ")
    );
    let mut parts: Vec<String> = data
        .splits
        .iter()
        .map(|split| match *split {
            lt_eval::ShotSplit::Thresholds { many_above, few_below } => {
                format!("many: > {many_above} training images, medium: {few_below}..={many_above}, few: < {few_below}")
            }
            lt_eval::ShotSplit::Thirds => {
                "head/mid/tail: classes sorted by training images and cut into thirds".to_string()
            }
        })
        .collect();
    parts.push("mean per-class accuracy".to_string());
    let subtitle = parts.join("; ");
    let legend = run_legend(data);
    let r = data.runs.len().max(1);
    let width = (categories.len() as u32 * (r as u32 * 26 + 40)).max(760).max(text_width(&subtitle, 12.0) as u32) + 90;
    let height = header_height(Some(&subtitle), &legend, width) + 420;
    let annotate = r <= 6;
    let svg = render("shot groups", (width, height), |root| {
        let area = header(root, &title, Some(&subtitle), &legend)?;
        let n = categories.len();
        let mut chart = ChartBuilder::on(&area)
            .margin_right(20)
            .margin_top(10)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), Ticked::new(0f64, 1.05, share_ticks()))?;
        draw_mesh(&mut chart, XAxis::Categories, "accuracy", &share_label)?;
        // A rule between the splits and before "balanced".
        for k in (3..n).step_by(3) {
            let x = k as f64 - 0.5;
            chart.draw_series(LineSeries::new([(x, 0.0), (x, 1.05)], RGBColor(170, 170, 170).stroke_width(1)))?;
        }
        let group_w = 0.8;
        let bar_w = group_w / r as f64;
        for (ri, v) in values.iter().enumerate() {
            for (k, &acc) in v.iter().enumerate() {
                if acc.is_nan() {
                    continue;
                }
                let x0 = k as f64 - group_w / 2.0 + ri as f64 * bar_w;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + bar_w * 0.9, acc)],
                    color(ri).filled(),
                )))?;
                if annotate {
                    let (x, y) = chart.backend_coord(&(x0 + bar_w * 0.45, acc));
                    root.draw(&Text::new(percent(acc), (x, y - 3), text_at(10.0, HPos::Center, VPos::Bottom)))?;
                }
            }
        }
        for (k, (name, detail)) in categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(k as f64, 0.0));
            root.draw(&Text::new(name.clone(), (x, y + 6), text_at(12.0, HPos::Center, VPos::Top)))?;
            let grey = text_at(10.0, HPos::Center, VPos::Top).color(&RGBColor(90, 90, 90));
            root.draw(&Text::new(detail.clone(), (x, y + 22), grey))?;
        }
        Ok(())
    })?;
    Ok(Figure {
        file: "shot-groups.svg",
        title: title.clone(),
        caption: format!("{subtitle}. Empty groups have no bar."),
        svg,
    })
}

/// "1 class", "4 classes".
fn classes_text(k: usize) -> String {
    if k == 1 { "1 class".to_string() } else { format!("{k} classes") }
}
