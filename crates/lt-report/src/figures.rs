//! The six figures, drawn with plotters' SVG backend (text stays `<text>`: no fonts needed).

use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::ReportError;
use crate::compare::ReportData;
use crate::style::{
    LegendEntry, bold_at, class_axis_labels, color, draw_legend, heat, legend_height, percent, text, text_at,
    text_width, truncate,
};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;
type YAxis = Ticked;

/// A linear f64 axis with chosen tick values (plotters' own `with_key_points` wrapper loses
/// the f64 formatter that `configure_mesh` needs).
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
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

fn render(
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

fn header_height(subtitle: Option<&str>, legend: &[LegendEntry], width: u32) -> u32 {
    TITLE_H + subtitle.map_or(0, |_| SUBTITLE_H) + legend_height(legend, width) + 4
}

/// Draws title, subtitle and legend; returns the area below them.
fn header<'a>(
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

fn run_legend(data: &ReportData) -> Vec<LegendEntry> {
    data.labels.iter().enumerate().map(|(i, l)| LegendEntry { label: l.clone(), color: color(i) }).collect()
}

/// Values per class in head-to-tail order, one series per run or count source.
struct ClassSeries {
    label: String,
    color: RGBColor,
    values: Vec<f64>,
}

#[derive(Clone, Copy)]
enum Scale {
    Share,
    Counts { log: bool, max: f64 },
}

fn nice_step(range: f64, target_ticks: f64) -> f64 {
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

/// Y axis, tick formatter and value transform of a scale.
type TickFormat = Box<dyn Fn(&f64) -> String>;

/// Maps a value onto the axis (log10 for log counts); `None` is not drawn.
type Transform = fn(f64) -> Option<f64>;

fn y_axis(scale: Scale) -> (YAxis, TickFormat, Transform) {
    match scale {
        Scale::Share => {
            let ticks: Vec<f64> = (0..=5).map(|k| k as f64 * 0.2).collect();
            (Ticked::new(0f64, 1.02, ticks), Box::new(|v: &f64| format!("{:.0}%", v * 100.0)), |v| {
                (!v.is_nan()).then_some(v)
            })
        }
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
#[allow(clippy::too_many_arguments)]
fn class_chart(
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
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .y_label_formatter(&fmt)
            .label_style(text(11.0))
            .axis_desc_style(text(12.0))
            .light_line_style(RGBColor(245, 245, 245))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
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
            }
        }
        draw_class_labels(root, &chart, &labels, base)?;
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

fn draw_class_labels<Y: Ranged<ValueType = f64>>(
    root: &Area,
    chart: &ChartContext<SVGBackend, Cartesian2d<RangedCoordf64, Y>>,
    labels: &crate::style::ClassAxisLabels,
    base: f64,
) -> DrawResult {
    for (pos, name) in labels.names.iter().enumerate() {
        if pos % labels.step != 0 {
            continue;
        }
        let (x, y) = chart.backend_coord(&(pos as f64, base));
        let style = if labels.rotated {
            text_at(labels.font_px, HPos::Right, VPos::Center).transform(FontTransform::Rotate270)
        } else {
            text_at(labels.font_px, HPos::Center, VPos::Top)
        };
        root.draw(&Text::new(name.clone(), (x, y + 5), style))?;
    }
    Ok(())
}

fn names_in_order(data: &ReportData) -> Vec<String> {
    data.order.iter().map(|&c| data.class_names[c].clone()).collect()
}

fn in_order<T: Copy>(data: &ReportData, values: &[T]) -> Vec<T> {
    data.order.iter().map(|&c| values[c]).collect()
}

/// Figure 1, class distribution: source vs long-tail subset vs each resampled manifest
/// (images per epoch), with the runs that trained on each; without a dataset, each run's
/// training counts.
pub fn class_distribution(data: &ReportData) -> Result<Figure, ReportError> {
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    let mut users: Vec<Vec<&str>> = Vec::new();
    let as_f64 = |v: &[u64]| v.iter().map(|&n| n as f64).collect::<Vec<_>>();
    if let Some(d) = &data.dataset {
        series.push(("source".to_string(), as_f64(&d.source)));
        series.push(("long-tail subset".to_string(), as_f64(&d.subset)));
        for (strategy, counts) in &d.manifests {
            series.push((format!("resampled: {strategy} (per epoch)"), counts.clone()));
        }
        users = vec![Vec::new(); series.len()];
    }
    // Attribute every run to the series equal to its training counts, or give it its own.
    for (run, label) in data.runs.iter().zip(&data.labels) {
        let counts = as_f64(&run.train_counts);
        let same = |s: &[f64]| s.len() == counts.len() && s.iter().zip(&counts).all(|(a, b)| (a - b).abs() <= 0.5);
        match series.iter().skip(usize::from(data.dataset.is_some())).position(|(_, s)| same(s)) {
            Some(i) => users[i + usize::from(data.dataset.is_some())].push(label),
            None => {
                series.push(("training counts".to_string(), counts));
                users.push(vec![label]);
            }
        }
    }
    // Series with equal counts (a manifest that visits the subset as it is) are drawn once.
    let mut merged: Vec<(String, Vec<f64>, Vec<&str>)> = Vec::new();
    for ((name, values), users) in series.into_iter().zip(users) {
        match merged.iter_mut().find(|(_, v, _)| *v == values) {
            Some((n, _, u)) => {
                n.push_str(" = ");
                n.push_str(&name);
                u.extend(users);
            }
            None => merged.push((name, values, users)),
        }
    }
    let all_runs = data.runs.len();
    let series: Vec<ClassSeries> = merged
        .into_iter()
        .enumerate()
        .map(|(i, (name, values, users))| ClassSeries {
            label: match users.len() {
                0 => name,
                n if n == all_runs && n > 2 => format!("{name} — all {n} runs"),
                _ => format!("{name} — runs: {}", users.join("; ")),
            },
            color: color(i),
            values: in_order(data, &values),
        })
        .collect();
    let max = series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite()).fold(1.0, f64::max);
    let scale = if data.log_counts { "log scale" } else { "linear scale" };
    let title = "Class distribution";
    let subtitle = format!("images per class ({scale}); resampled manifests: mean images per epoch");
    let svg = class_chart(
        "class distribution",
        title,
        Some(&subtitle),
        "images",
        &names_in_order(data),
        &series,
        Scale::Counts { log: data.log_counts, max },
    )?;
    Ok(Figure {
        file: "class-distribution.svg",
        title: title.to_string(),
        caption: format!("Images per class, {scale}. Each legend entry names the runs that trained on it."),
        svg,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Curve {
    Accuracy,
    Loss,
}

/// Figure 2: accuracy or loss per epoch: one panel per split (train, val, test), all runs overlaid.
fn curves(data: &ReportData, curve: Curve) -> Result<Figure, ReportError> {
    let mut splits: Vec<&str> = Vec::new();
    for want in ["train", "val", "test"] {
        if data.runs.iter().any(|r| r.metrics.iter().any(|m| m.split == want)) {
            splits.push(want);
        }
    }
    for r in &data.runs {
        for m in &r.metrics {
            if !splits.contains(&m.split.as_str()) {
                splits.push(m.split.as_str());
            }
        }
    }
    if splits.is_empty() {
        splits.push("test");
    }
    let value = |m: &crate::input::MetricRow| if curve == Curve::Accuracy { m.accuracy } else { m.loss };
    let max_epoch = data.runs.iter().map(|r| r.epochs()).max().unwrap_or(1).max(1);
    let max_loss =
        data.runs.iter().flat_map(|r| r.metrics.iter().map(|m| m.loss)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let (title, file, y_desc) = match curve {
        Curve::Accuracy => ("Accuracy per epoch", "curves-accuracy.svg", "accuracy"),
        Curve::Loss => ("Loss per epoch", "curves-loss.svg", "loss"),
    };
    let legend = run_legend(data);
    let panel_w = 460u32;
    let width = panel_w * splits.len() as u32;
    let height = header_height(None, &legend, width) + 380;
    let svg =
        render(if curve == Curve::Accuracy { "accuracy curves" } else { "loss curves" }, (width, height), |root| {
            let area = header(root, title, None, &legend)?;
            let panels = area.split_evenly((1, splits.len()));
            for (panel, split) in panels.iter().zip(&splits) {
                let y_top = match curve {
                    Curve::Accuracy => 1.02,
                    Curve::Loss => (max_loss * 1.08).max(1e-3),
                };
                let ticks: Vec<f64> = match curve {
                    Curve::Accuracy => (0..=5).map(|k| k as f64 * 0.2).collect(),
                    Curve::Loss => {
                        let step = nice_step(y_top, 5.0);
                        (0..=((y_top / step).floor() as usize)).map(|k| k as f64 * step).collect()
                    }
                };
                let x_step = nice_step(max_epoch as f64, 6.0).max(1.0);
                let x_ticks: Vec<f64> =
                    (0..=((max_epoch as f64 / x_step) as usize)).map(|k| (k as f64 * x_step).max(1.0)).collect();
                let mut chart = ChartBuilder::on(panel)
                    .caption(*split, text(14.0))
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(56)
                    .build_cartesian_2d(
                        Ticked::new(0.5f64, max_epoch as f64 + 0.5, x_ticks),
                        Ticked::new(0f64, y_top, ticks),
                    )?;
                let fmt = |v: &f64| match curve {
                    Curve::Accuracy => format!("{:.0}%", v * 100.0),
                    Curve::Loss => format!("{}", (v * 1000.0).round() / 1000.0),
                };
                let xfmt = |v: &f64| format!("{v:.0}");
                chart
                    .configure_mesh()
                    .x_desc("epoch")
                    .y_desc(y_desc)
                    .x_label_formatter(&xfmt)
                    .y_label_formatter(&fmt)
                    .label_style(text(11.0))
                    .axis_desc_style(text(12.0))
                    .light_line_style(RGBColor(245, 245, 245))
                    .bold_line_style(RGBColor(225, 225, 225))
                    .draw()?;
                for (i, run) in data.runs.iter().enumerate() {
                    let mut points: Vec<(f64, f64)> = run
                        .metrics
                        .iter()
                        .filter(|m| m.split == *split && value(m).is_finite())
                        .map(|m| (f64::from(m.epoch), value(m)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let c = color(i);
                    chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
                    if max_epoch <= 40 {
                        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
                    }
                }
            }
            Ok(())
        })?;
    let what = if curve == Curve::Accuracy { "Accuracy" } else { "Loss" };
    Ok(Figure {
        file,
        title: title.to_string(),
        caption: format!("{what} per epoch for each split in metrics.parquet; one colour per run."),
        svg,
    })
}

/// Figure 3: row-normalised confusion matrices, one panel per run, annotated when cells are
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
    let runs = data.runs.len();
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
        for ((run, label), panel) in data.runs.iter().zip(&data.labels).zip(&panels) {
            let norm = run.confusion.row_normalized();
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
            for (k, name) in labels.names.iter().enumerate() {
                let centre = (px(k) + px(k + 1)) / 2;
                if k % labels.step == 0 {
                    let style = if labels.rotated {
                        text_at(labels.font_px, HPos::Right, VPos::Center).transform(FontTransform::Rotate270)
                    } else {
                        text_at(labels.font_px, HPos::Center, VPos::Top)
                    };
                    panel.draw(&Text::new(name.clone(), (x0 + centre, y0 + side as i32 + 4), style))?;
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
        caption: "Row t shows where the test images of class t went; the diagonal is the per-class accuracy. Grey rows: no test images."
            .to_string(),
        svg,
    })
}

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

/// Figure 5: accuracy of the head/mid/tail (or many/medium/few) groups and the balanced accuracy.
pub fn shot_groups(data: &ReportData) -> Result<Figure, ReportError> {
    let names = data.split.names();
    let group_classes: Vec<usize> =
        data.shots.first().map_or(vec![0; 3], |s| s.groups.iter().map(|g| g.classes.len()).collect());
    let mut categories: Vec<(String, String)> =
        names.iter().zip(&group_classes).map(|(n, k)| (n.to_string(), format!("{k} classes"))).collect();
    categories.push(("balanced".to_string(), "all classes".to_string()));
    let values: Vec<Vec<f64>> = data
        .runs
        .iter()
        .zip(&data.shots)
        .map(|(r, s)| {
            let mut v = s.accuracies().to_vec();
            v.push(r.report.balanced_accuracy);
            v
        })
        .collect();
    let title = format!("Accuracy by shot group ({})", names.join("/"));
    let subtitle = match data.split {
        lt_eval::ShotSplit::Thresholds { many_above, few_below } => format!(
            "many: > {many_above} training images, medium: {few_below}..={many_above}, few: < {few_below}; mean per-class accuracy"
        ),
        lt_eval::ShotSplit::Thirds => {
            "classes sorted by training images and cut into thirds; mean per-class accuracy".to_string()
        }
    };
    let legend = run_legend(data);
    let r = data.runs.len().max(1);
    let width = (categories.len() as u32 * (r as u32 * 26 + 40)).max(760) + 90;
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
            .build_cartesian_2d(
                -0.5f64..(n as f64 - 0.5),
                Ticked::new(0f64, 1.05, (0..=5).map(|k| k as f64 * 0.2).collect()),
            )?;
        let fmt = |v: &f64| format!("{:.0}%", v * 100.0);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("accuracy")
            .y_label_formatter(&fmt)
            .label_style(text(11.0))
            .axis_desc_style(text(12.0))
            .light_line_style(RGBColor(245, 245, 245))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
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

/// A text's box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelBox {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl LabelBox {
    fn overlaps(&self, o: &LabelBox) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// The first of eight positions around `at`, inside `bounds`, where `text` overlaps neither
/// a placed label nor a marker of radius `radius` (other than its own point's).
pub fn place_label(
    text: &str,
    font_px: f64,
    at: (i32, i32),
    radius: i32,
    bounds: LabelBox,
    placed: &[LabelBox],
    points: &[(i32, i32)],
) -> Option<LabelBox> {
    let w = text_width(text, font_px).ceil() as i32;
    let h = (font_px * 1.2).ceil() as i32;
    let gap = radius + 3;
    let (x, y) = at;
    let candidates = [
        (x + gap, y - h / 2),
        (x - gap - w, y - h / 2),
        (x - w / 2, y - gap - h),
        (x - w / 2, y + gap),
        (x + gap, y - gap - h),
        (x + gap, y + gap),
        (x - gap - w, y - gap - h),
        (x - gap - w, y + gap),
    ];
    candidates.into_iter().map(|(x0, y0)| LabelBox { x0, y0, x1: x0 + w, y1: y0 + h }).find(|b| {
        b.x0 >= bounds.x0
            && b.x1 <= bounds.x1
            && b.y0 >= bounds.y0
            && b.y1 <= bounds.y1
            && !placed.iter().any(|p| p.overlaps(b))
            && !points.iter().any(|&(px, py)| {
                (px, py) != at
                    && b.overlaps(&LabelBox { x0: px - radius, y0: py - radius, x1: px + radius, y1: py + radius })
            })
    })
}

/// Figure 6: per-class precision against recall, one colour per run; with few classes each
/// class is named and its points across runs are joined.
pub fn precision_recall(data: &ReportData) -> Result<Figure, ReportError> {
    let c = data.class_names.len();
    let legend = run_legend(data);
    let width = 760u32;
    let name_points = c <= 20;
    let subtitle = if name_points {
        "one point per class and run; grey lines join a class across runs"
    } else {
        "one point per class and run"
    };
    let height = header_height(Some(subtitle), &legend, width) + 680;
    let title = "Per-class precision vs recall";
    let svg = render("precision vs recall", (width, height), |root| {
        let area = header(root, title, Some(subtitle), &legend)?;
        let ticks = || (0..=5).map(|k| k as f64 * 0.2).collect::<Vec<_>>();
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(Ticked::new(-0.02f64, 1.04, ticks()), Ticked::new(-0.02f64, 1.04, ticks()))?;
        let fmt = |v: &f64| format!("{:.0}%", v * 100.0);
        chart
            .configure_mesh()
            .x_desc("recall (per-class accuracy)")
            .y_desc("precision")
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .label_style(text(11.0))
            .axis_desc_style(text(12.0))
            .light_line_style(RGBColor(245, 245, 245))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        let point = |r: &crate::input::Run, k: usize| {
            let (rec, prec) = (r.report.per_class_accuracy[k], r.report.precision[k]);
            (!rec.is_nan()).then_some((rec, prec))
        };
        if name_points && data.runs.len() > 1 {
            for k in 0..c {
                let pts: Vec<(f64, f64)> = data.runs.iter().filter_map(|r| point(r, k)).collect();
                chart.draw_series(LineSeries::new(pts, RGBColor(190, 190, 190).stroke_width(1)))?;
            }
        }
        let radius = if c <= 20 { 5 } else { 3 };
        for (i, run) in data.runs.iter().enumerate() {
            chart
                .draw_series((0..c).filter_map(|k| point(run, k)).map(|p| Circle::new(p, radius, color(i).filled())))?;
        }
        if name_points && let Some(first) = data.runs.first() {
            // Greedy placement: the first candidate position whose box hits no other label and
            // no point; a name with no free position is left out rather than overlapped.
            let points: Vec<(i32, i32)> = data
                .runs
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
