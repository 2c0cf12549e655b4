//! Figure 5, accuracy by shot group.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::Figure;
use super::chart::{
    Ticked, XAxis, draw_mesh, header, header_height, render, run_legend, share_label, share_ticks, whisker,
};
use crate::ReportError;
use crate::compare::ReportData;
use crate::experiments::Spread;
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
    // Per experiment and category: the spread over its seeds.
    let values: Vec<Vec<Spread>> = data
        .experiments
        .iter()
        .map(|e| {
            let per_run: Vec<Vec<f64>> = e
                .runs
                .iter()
                .map(|&i| {
                    let mut v: Vec<f64> = data.shots[i].iter().flat_map(|s| s.accuracies()).collect();
                    v.push(data.runs[i].report.balanced_accuracy);
                    v
                })
                .collect();
            (0..categories.len()).map(|k| Spread::of(&per_run.iter().map(|v| v[k]).collect::<Vec<_>>())).collect()
        })
        .collect();
    let seeds = data.has_seeds();
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
    let r = data.experiments.len().max(1);
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
            for (k, spread) in v.iter().enumerate() {
                let acc = spread.mean;
                if acc.is_nan() {
                    continue;
                }
                let x0 = k as f64 - group_w / 2.0 + ri as f64 * bar_w;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + bar_w * 0.9, acc)],
                    color(ri).filled(),
                )))?;
                let mut top = acc;
                if spread.std.is_some() {
                    let (lo, hi) = spread.std_range();
                    top = hi.min(1.0);
                    whisker(&mut chart, x0 + bar_w * 0.45, (lo.max(0.0), top), bar_w * 0.4, RGBColor(40, 40, 40))?;
                }
                if annotate {
                    let (x, y) = chart.backend_coord(&(x0 + bar_w * 0.45, top));
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
        caption: if seeds {
            format!(
                "{subtitle}. Bars: the mean over each experiment's seeds, whiskers ± one sample standard deviation \
                 (clipped to 0–100%); the number is the mean. Empty groups have no bar."
            )
        } else {
            format!("{subtitle}. Empty groups have no bar.")
        },
        svg,
    })
}

/// "1 class", "4 classes".
fn classes_text(k: usize) -> String {
    if k == 1 { "1 class".to_string() } else { format!("{k} classes") }
}
