//! Figure 3, confusion matrices.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::Figure;
use super::chart::{class_name, header, header_height, render};
use crate::ReportError;
use crate::compare::ReportData;
use crate::style::{class_axis_labels, heat, text_at, text_width, truncate};

/// Figure 3: row-normalised confusion matrices, one panel per experiment (seeds pooled), annotated when cells are
/// large enough to hold a number.
pub fn confusion_matrices(data: &ReportData) -> Result<Figure, ReportError> {
    let c = data.class_names.len();
    let side: u32 = if c <= 12 { (c as u32 * 38).max(240) } else { (c as u32 * 6).clamp(360, 640) };
    let cell = side as f64 / c as f64;
    let labels = class_axis_labels(&data.class_names, cell);
    let left_labels = data.class_names.iter().map(|n| text_width(&truncate(n, 16), labels.font_px)).fold(0.0, f64::max);
    let y_step = ((1.3 * labels.font_px) / cell).ceil().max(1.0) as usize;
    let pad_left = left_labels.ceil() as u32 + 36;
    let pad_top = 30u32;
    let pad_bottom = labels.height + 30;
    let colorbar = 56u32;
    let panel_w = pad_left + side + colorbar + 16;
    let panel_h = pad_top + side + pad_bottom;
    let runs = data.experiments.len();
    let max_width = 1600u32;
    let cols = ((max_width / panel_w).max(1) as usize).min(runs.max(1));
    let rows = runs.div_ceil(cols);
    let width = panel_w * cols as u32;
    let subtitle = "rows: true class, columns: predicted class; each row divided by that class's test images";
    let height = header_height(Some(subtitle), &[], width) + panel_h * rows as u32;
    let annotate = cell >= 30.0;
    let svg = render("confusion matrices", (width, height), |root| {
        let area = header(root, "Confusion matrices (row-normalised)", Some(subtitle), &[])?;
        let panels = area.split_evenly((rows, cols));
        for (experiment, panel) in data.experiments.iter().zip(&panels) {
            let label = &experiment.label;
            let norm = experiment.confusion.row_normalized();
            let x0 = pad_left as i32;
            let y0 = pad_top as i32;
            let px = |k: usize| (k as f64 * cell).round() as i32;
            panel.draw(&Text::new(
                truncate(label, ((panel_w as f64 - 20.0) / 7.0) as usize),
                (x0 + side as i32 / 2, 14),
                text_at(13.0, HPos::Center, VPos::Center),
            ))?;
            // Background = the colour of 0: only non-zero cells are drawn, which keeps
            // 100-class matrices small.
            panel.draw(&Rectangle::new([(x0, y0), (x0 + side as i32, y0 + side as i32)], heat(0.0).filled()))?;
            for t in 0..c {
                for p in 0..c {
                    let v = norm[t * c + p];
                    if v == 0.0 {
                        continue;
                    }
                    let rect = [(x0 + px(p), y0 + px(t)), (x0 + px(p + 1), y0 + px(t + 1))];
                    panel.draw(&Rectangle::new(rect, heat(v).filled()))?;
                    if annotate && !v.is_nan() {
                        let fg = if v > 0.5 { WHITE } else { BLACK };
                        let centre = (x0 + (px(p) + px(p + 1)) / 2, y0 + (px(t) + px(t + 1)) / 2);
                        let s = format!("{:.2}", v);
                        panel.draw(&Text::new(s, centre, text_at(10.0, HPos::Center, VPos::Center).color(&fg)))?;
                    }
                }
            }
            panel.draw(&Rectangle::new(
                [(x0, y0), (x0 + side as i32, y0 + side as i32)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))?;
            // Predicted classes under the matrix (as under a class axis), true classes left of it.
            for (k, name) in labels.names.iter().enumerate() {
                let centre = (px(k) + px(k + 1)) / 2;
                if let Some(column) = class_name(&labels, k, (x0 + centre, y0 + side as i32 + 4)) {
                    panel.draw(&column)?;
                }
                if k % y_step == 0 {
                    let style = text_at(labels.font_px, HPos::Right, VPos::Center);
                    panel.draw(&Text::new(name.clone(), (x0 - 4, y0 + centre), style))?;
                }
            }
            let axis = text_at(11.0, HPos::Center, VPos::Center).color(&RGBColor(60, 60, 60));
            panel.draw(&Text::new(
                "predicted".to_string(),
                (x0 + side as i32 / 2, y0 + side as i32 + labels.height as i32 + 14),
                axis.clone(),
            ))?;
            panel.draw(&Text::new(
                "true".to_string(),
                (10, y0 + side as i32 / 2),
                axis.transform(FontTransform::Rotate270),
            ))?;
            // Colour bar 0..1.
            let bx = x0 + side as i32 + 12;
            let steps = 50;
            for s in 0..steps {
                let v = 1.0 - (s as f64 + 0.5) / steps as f64;
                let ya = y0 + (s as f64 * side as f64 / steps as f64) as i32;
                let yb = y0 + ((s + 1) as f64 * side as f64 / steps as f64) as i32;
                panel.draw(&Rectangle::new([(bx, ya), (bx + 12, yb)], heat(v).filled()))?;
            }
            for (v, s) in [(1.0, "1"), (0.5, "0.5"), (0.0, "0")] {
                let y = y0 + ((1.0 - v) * side as f64) as i32;
                panel.draw(&Text::new(s.to_string(), (bx + 16, y), text_at(10.0, HPos::Left, VPos::Center)))?;
            }
        }
        Ok(())
    })?;
    Ok(Figure {
        file: "confusion.svg",
        title: "Confusion matrices (row-normalised)".to_string(),
        caption: if data.has_seeds() {
            "One panel per experiment, its seeds' predictions pooled. Row t shows where the test images of class t went; \
             the diagonal is the per-class accuracy. Grey rows: no test images."
                .to_string()
        } else {
            "Row t shows where the test images of class t went; the diagonal is the per-class accuracy. Grey rows: no test images."
                .to_string()
        },
        svg,
    })
}
