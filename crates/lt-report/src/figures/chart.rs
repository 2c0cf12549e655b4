//! What every figure shares: the SVG canvas, the header (title, subtitle, legend), a linear
//! axis with chosen ticks, the mesh style, and class names written under an axis.

use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::ReportError;
use crate::compare::ReportData;
use crate::style::{ClassAxisLabels, LegendEntry, bold_at, color, draw_legend, legend_height, text, text_at};

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(super) type DrawResult = Result<(), Box<dyn Error>>;

/// A linear f64 axis with chosen tick values (plotters' own `with_key_points` wrapper loses
/// the f64 formatter that `configure_mesh` needs).
#[derive(Debug, Clone)]
pub(super) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    pub(super) fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self { lo, hi, ticks }
    }
}

impl Ranged for Ticked {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.lo) / (self.hi - self.lo);
        let length = f64::from(limit.1 - limit.0);
        if share.is_finite() { limit.0 + (length * share).round() as i32 } else { limit.0 }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }
}

/// Draws a figure of `size` pixels on a white SVG canvas; `figure` names it in errors.
pub(super) fn render(
    figure: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let result: DrawResult = (|| {
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })();
        result.map_err(|e| ReportError::Plot { figure, message: e.to_string() })?;
    }
    Ok(svg)
}

const TITLE_H: u32 = 30;
const SUBTITLE_H: u32 = 20;

/// Pixels the [`header`] takes at this width.
pub(super) fn header_height(subtitle: Option<&str>, legend: &[LegendEntry], width: u32) -> u32 {
    TITLE_H + subtitle.map_or(0, |_| SUBTITLE_H) + legend_height(legend, width) + 4
}

/// Draws title, subtitle and legend; returns the area below them.
pub(super) fn header<'a>(
    root: &Area<'a>,
    title: &str,
    subtitle: Option<&str>,
    legend: &[LegendEntry],
) -> Result<Area<'a>, Box<dyn Error>> {
    let width = root.dim_in_pixel().0;
    let h = header_height(subtitle, legend, width);
    let (top, rest) = root.split_vertically(h);
    let bold = bold_at(17.0, HPos::Center, VPos::Center);
    top.draw(&Text::new(title.to_string(), (width as i32 / 2, 17), bold))?;
    let mut y = TITLE_H;
    if let Some(s) = subtitle {
        let style = text_at(12.0, HPos::Center, VPos::Center).color(&RGBColor(80, 80, 80));
        top.draw(&Text::new(s.to_string(), (width as i32 / 2, y as i32 + 8), style))?;
        y += SUBTITLE_H;
    }
    if !legend.is_empty() {
        let (_, legend_area) = top.split_vertically(y);
        draw_legend(&legend_area, legend)?;
    }
    Ok(rest)
}

/// One legend entry per experiment (a run, or the seeds of one), in its colour.
pub(super) fn run_legend(data: &ReportData) -> Vec<LegendEntry> {
    data.experiments.iter().enumerate().map(|(i, e)| LegendEntry { label: e.label.clone(), color: color(i) }).collect()
}

/// Draws a whisker from `lo` to `hi` at `x` with caps `cap` wide (x units), in `color`.
pub(super) fn whisker<Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<SVGBackend, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    x: f64,
    (lo, hi): (f64, f64),
    cap: f64,
    color: RGBColor,
) -> DrawResult {
    let style = color.stroke_width(1);
    chart.draw_series(std::iter::once(PathElement::new([(x, lo), (x, hi)], style)))?;
    for y in [lo, hi] {
        chart.draw_series(std::iter::once(PathElement::new([(x - cap / 2.0, y), (x + cap / 2.0, y)], style)))?;
    }
    Ok(())
}

/// A step of 1, 2 or 5 times a power of ten that cuts `range` into about `target_ticks`.
pub(super) fn nice_step(range: f64, target_ticks: f64) -> f64 {
    let raw = (range / target_ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks at 0%, 20%, ..., 100%.
pub(super) fn share_ticks() -> Vec<f64> {
    (0..=5).map(|k| k as f64 * 0.2).collect()
}

/// A share written as a whole percentage (tick labels).
pub(super) fn share_label(v: &f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The x axis of a mesh.
pub(super) enum XAxis<'f> {
    /// Categories (classes, shot groups) whose names the figure writes itself: no x labels,
    /// no vertical grid lines.
    Categories,
    /// Values with a description and tick labels.
    Values { desc: &'f str, format: &'f dyn Fn(&f64) -> String },
}

/// Draws the grid, axes and tick labels of `chart` in the report's style (11 px labels, 12 px
/// axis descriptions, light grey grid).
pub(super) fn draw_mesh<X, Y>(
    chart: &mut ChartContext<SVGBackend, Cartesian2d<X, Y>>,
    x: XAxis,
    y_desc: &str,
    y_format: &dyn Fn(&f64) -> String,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut mesh = chart.configure_mesh();
    match x {
        XAxis::Categories => mesh.disable_x_mesh().x_labels(0),
        XAxis::Values { desc, format } => mesh.x_desc(desc).x_label_formatter(format),
    };
    mesh.y_desc(y_desc)
        .y_label_formatter(y_format)
        .label_style(text(11.0))
        .axis_desc_style(text(12.0))
        .light_line_style(RGBColor(245, 245, 245))
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    Ok(())
}

/// The name of the class at position `pos` along a class axis, written at `at` (just below
/// the axis), or `None` when thinning leaves this class unnamed.
pub(super) fn class_name(
    labels: &ClassAxisLabels,
    pos: usize,
    at: (i32, i32),
) -> Option<Text<'static, (i32, i32), String>> {
    if !pos.is_multiple_of(labels.step) {
        return None;
    }
    let style = if labels.rotated {
        text_at(labels.font_px, HPos::Right, VPos::Center).transform(FontTransform::Rotate270)
    } else {
        text_at(labels.font_px, HPos::Center, VPos::Top)
    };
    Some(Text::new(labels.names[pos].clone(), at, style))
}
