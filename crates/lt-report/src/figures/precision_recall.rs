//! Figure 6, per-class precision against recall.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::Figure;
use super::chart::{Ticked, XAxis, draw_mesh, header, header_height, render, run_legend, share_label, share_ticks};
use super::label_layout::{LabelBox, place_label};
use crate::ReportError;
use crate::compare::ReportData;
use crate::experiments::Experiment;
use crate::style::{color, text_at, truncate};

/// Figure 6: per-class precision against recall, one colour per run; with few classes each
/// class is named and its points across runs are joined.
pub fn precision_recall(data: &ReportData) -> Result<Figure, ReportError> {
    let c = data.class_names.len();
    let legend = run_legend(data);
    let width = 760u32;
    let name_points = c <= 20;
    let subtitle = match (name_points, data.has_seeds()) {
        (true, false) => "one point per class and run; grey lines join a class across runs",
        (false, false) => "one point per class and run",
        (true, true) => {
            "one point per class and experiment (its seeds' predictions pooled); grey lines join a class across experiments"
        }
        (false, true) => "one point per class and experiment (its seeds' predictions pooled)",
    };
    let height = header_height(Some(subtitle), &legend, width) + 680;
    let title = "Per-class precision vs recall";
    let svg = render("precision vs recall", (width, height), |root| {
        let area = header(root, title, Some(subtitle), &legend)?;
        let mut chart =
            ChartBuilder::on(&area).margin(16).x_label_area_size(44).y_label_area_size(60).build_cartesian_2d(
                Ticked::new(-0.02f64, 1.04, share_ticks()),
                Ticked::new(-0.02f64, 1.04, share_ticks()),
            )?;
        let x = XAxis::Values { desc: "recall (per-class accuracy)", format: &share_label };
        draw_mesh(&mut chart, x, "precision", &share_label)?;
        let point = |r: &Experiment, k: usize| {
            let (rec, prec) = (r.report.per_class_accuracy[k], r.report.precision[k]);
            (!rec.is_nan()).then_some((rec, prec))
        };
        if name_points && data.experiments.len() > 1 {
            for k in 0..c {
                let pts: Vec<(f64, f64)> = data.experiments.iter().filter_map(|r| point(r, k)).collect();
                chart.draw_series(LineSeries::new(pts, RGBColor(190, 190, 190).stroke_width(1)))?;
            }
        }
        let radius = if c <= 20 { 5 } else { 3 };
        for (i, run) in data.experiments.iter().enumerate() {
            chart
                .draw_series((0..c).filter_map(|k| point(run, k)).map(|p| Circle::new(p, radius, color(i).filled())))?;
        }
        if name_points && let Some(first) = data.experiments.first() {
            // Greedy placement: the first candidate position whose box hits no other label and
            // no point; a name with no free position is left out rather than overlapped.
            let points: Vec<(i32, i32)> = data
                .experiments
                .iter()
                .flat_map(|r| (0..c).filter_map(move |k| point(r, k)))
                .map(|p| chart.backend_coord(&p))
                .collect();
            let (x_px, y_px) = chart.plotting_area().get_pixel_range();
            let bounds = LabelBox { x0: x_px.start, y0: y_px.start, x1: x_px.end, y1: y_px.end };
            let mut placed: Vec<LabelBox> = Vec::new();
            for k in 0..c {
                let Some(p) = point(first, k) else { continue };
                let (x, y) = chart.backend_coord(&p);
                let name = truncate(&data.class_names[k], 16);
                if let Some(b) = place_label(&name, 10.0, (x, y), radius, bounds, &placed, &points) {
                    let style = text_at(10.0, HPos::Left, VPos::Center).color(&RGBColor(50, 50, 50));
                    root.draw(&Text::new(name, (b.x0, (b.y0 + b.y1) / 2), style))?;
                    placed.push(b);
                }
            }
        }
        Ok(())
    })?;
    Ok(Figure {
        file: "precision-recall.svg",
        title: title.to_string(),
        caption: "Precision against recall for every class; classes without test images are left out.".to_string(),
        svg,
    })
}
