//! Values per class over a class axis ordered head to tail: grouped bars, or lines with
//! markers when classes × series is large. The class distribution and per-class accuracy
//! figures are drawn with it.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::chart::{
    Ticked, XAxis, class_name, draw_mesh, header, header_height, nice_step, render, share_label, share_ticks, whisker,
};
use crate::ReportError;
use crate::style::{LegendEntry, class_axis_labels, text_at};

/// Values per class in head-to-tail order, one series per run or count source.
pub(super) struct ClassSeries {
    pub label: String,
    pub color: RGBColor,
    pub values: Vec<f64>,
    /// Per class, the (low, high) whisker around the value (the spread over seeds); `None`
    /// draws none.
    pub spread: Option<Vec<(f64, f64)>>,
}

/// What the y axis shows.
#[derive(Clone, Copy)]
pub(super) enum Scale {
    /// Shares in [0, 1], as percentages.
    Share,
    /// Image counts up to `max`, on a log or a linear axis.
    Counts { log: bool, max: f64 },
}

/// Y axis tick formatter.
type TickFormat = Box<dyn Fn(&f64) -> String>;

/// Maps a value onto the axis (log10 for log counts); `None` is not drawn.
type Transform = fn(f64) -> Option<f64>;

/// Y axis, tick formatter and value transform of a scale.
fn y_axis(scale: Scale) -> (Ticked, TickFormat, Transform) {
    match scale {
        Scale::Share => (Ticked::new(0f64, 1.02, share_ticks()), Box::new(share_label), |v| (!v.is_nan()).then_some(v)),
        Scale::Counts { log: false, max } => {
            let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
            let step = nice_step(max, 5.0);
            let top = (max / step).ceil() * step;
            let ticks: Vec<f64> = (0..=((top / step).round() as usize)).map(|k| k as f64 * step).collect();
            (Ticked::new(0f64, top * 1.04, ticks), Box::new(|v: &f64| format!("{v}")), |v| (!v.is_nan()).then_some(v))
        }
        Scale::Counts { log: true, max } => {
            let top = if max.is_finite() && max >= 1.0 { max.log10().ceil().max(1.0) } else { 1.0 };
            let ticks: Vec<f64> = (0..=(top as usize)).map(|k| k as f64).collect();
            (Ticked::new(0f64, top + 0.05, ticks), Box::new(|v: &f64| format!("{}", 10f64.powf(*v).round())), |v| {
                (v >= 1.0).then(|| v.log10())
            })
        }
    }
}

/// Grouped bars (or, when classes × series is large, lines with markers) over classes
/// ordered head to tail, with the class names thinned or rotated to stay legible.
pub(super) fn class_chart(
    figure: &'static str,
    title: &str,
    subtitle: Option<&str>,
    y_desc: &str,
    names: &[String],
    series: &[ClassSeries],
    scale: Scale,
) -> Result<String, ReportError> {
    let c = names.len().max(1);
    let r = series.len().max(1);
    let bars = c * r <= 200;
    let min_slot = if bars { (r * 5 + 4).max(12) } else { 12 } as f64;
    let plot_w = (c as f64 * min_slot).max(820.0);
    let left = 72u32;
    let right = 24u32;
    let width = plot_w as u32 + left + right;
    let slot = plot_w / c as f64;
    let labels = class_axis_labels(names, slot);
    let legend: Vec<LegendEntry> =
        series.iter().map(|s| LegendEntry { label: s.label.clone(), color: s.color }).collect();
    let plot_h = 400u32;
    let x_area = labels.height + 26;
    let height = header_height(subtitle, &legend, width) + plot_h + x_area + 10;
    render(figure, (width, height), |root| {
        let area = header(root, title, subtitle, &legend)?;
        let (y_range, fmt, transform) = y_axis(scale);
        let mut chart = ChartBuilder::on(&area)
            .margin_right(right)
            .margin_top(6)
            .x_label_area_size(x_area)
            .y_label_area_size(left)
            .build_cartesian_2d(-0.5f64..(c as f64 - 0.5), y_range)?;
        draw_mesh(&mut chart, XAxis::Categories, y_desc, &fmt)?;
        let base = chart.y_range().start;
        if bars {
            let group_w = 0.84;
            let bar_w = group_w / r as f64;
            for (si, s) in series.iter().enumerate() {
                chart.draw_series(s.values.iter().enumerate().filter_map(|(ci, &v)| {
                    let v = transform(v)?;
                    let x0 = ci as f64 - group_w / 2.0 + si as f64 * bar_w;
                    Some(Rectangle::new([(x0, base), (x0 + bar_w * 0.92, v)], s.color.filled()))
                }))?;
                for (ci, &(lo, hi)) in s.spread.iter().flatten().enumerate() {
                    let (Some(lo), Some(hi)) = (transform(lo), transform(hi)) else { continue };
                    let x = ci as f64 - group_w / 2.0 + (si as f64 + 0.46) * bar_w;
                    whisker(&mut chart, x, (lo, hi), bar_w * 0.5, RGBColor(40, 40, 40))?;
                }
            }
        } else {
            for s in series {
                // A NaN (class without samples) breaks the line.
                let mut segment: Vec<(f64, f64)> = Vec::new();
                let mut segments = Vec::new();
                for (ci, &v) in s.values.iter().enumerate() {
                    match transform(v) {
                        Some(v) => segment.push((ci as f64, v)),
                        None => segments.push(std::mem::take(&mut segment)),
                    }
                }
                segments.push(segment);
                for seg in segments {
                    chart.draw_series(LineSeries::new(seg.iter().copied(), s.color.stroke_width(1)))?;
                    if r <= 4 {
                        chart.draw_series(seg.iter().map(|&p| Circle::new(p, 2, s.color.filled())))?;
                    }
                }
                for (ci, &(lo, hi)) in s.spread.iter().flatten().enumerate() {
                    let (Some(lo), Some(hi)) = (transform(lo), transform(hi)) else { continue };
                    whisker(&mut chart, ci as f64, (lo, hi), 0.4, s.color)?;
                }
            }
        }
        for pos in 0..labels.names.len() {
            let (x, y) = chart.backend_coord(&(pos as f64, base));
            if let Some(name) = class_name(&labels, pos, (x, y + 5)) {
                root.draw(&name)?;
            }
        }
        let (x0, x1) = (chart.backend_coord(&(-0.5, base)).0, chart.backend_coord(&(c as f64 - 0.5, base)).0);
        let y = chart.backend_coord(&(0.0, base)).1 + labels.height as i32 + 14;
        root.draw(&Text::new(
            "classes, head → tail (most training images first)".to_string(),
            ((x0 + x1) / 2, y),
            text_at(12.0, HPos::Center, VPos::Center),
        ))?;
        Ok(())
    })
}
