//! Colours, text and the layout rules that keep labels legible for 10 and for 100 classes.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(crate) const FONT: &str = "sans-serif";

/// Tableau 10: distinct, colour-blind-friendlier colours, one per run (cycled past 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A text style whose SVG `font-size` is `px` (plotters' SVG backend divides by 1.24).
pub(crate) fn text(px: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, px * 1.24).into_font()).color(&BLACK)
}

pub(crate) fn text_at(px: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    text(px).pos(Pos::new(h, v))
}

pub(crate) fn bold_at(px: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, px * 1.24).into_font().style(FontStyle::Bold)).color(&BLACK).pos(Pos::new(h, v))
}

/// Estimated width in pixels of `s` at font size `px` (sans-serif averages ~0.6 em per
/// character; wide enough that estimated boxes do not overlap real glyphs).
pub(crate) fn text_width(s: &str, px: f64) -> f64 {
    0.6 * px * s.chars().count() as f64
}

/// Shortens `s` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// How class names are written under a class axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassAxisLabels {
    /// Written vertically (reading bottom to top) instead of horizontally.
    pub rotated: bool,
    /// Every `step`-th class gets its name (1 = all).
    pub step: usize,
    pub font_px: f64,
    /// The names as written (truncated to 16 characters).
    pub names: Vec<String>,
    /// Pixels below the axis the labels need.
    pub height: u32,
}

/// Chooses horizontal or rotated class names, and thins them, so that no two labels overlap
/// when classes are `slot_px` apart: horizontal when every name fits its slot, otherwise
/// rotated and every `step`-th class labelled, with `step · slot_px >= 1.3 · font_px`.
pub fn class_axis_labels(names: &[String], slot_px: f64) -> ClassAxisLabels {
    let font_px = 11.0;
    let names: Vec<String> = names.iter().map(|n| truncate(n, 16)).collect();
    let widest = names.iter().map(|n| text_width(n, font_px)).fold(0.0, f64::max);
    if widest + 4.0 <= slot_px {
        return ClassAxisLabels { rotated: false, step: 1, font_px, names, height: (font_px * 2.0) as u32 + 6 };
    }
    let step = ((1.3 * font_px) / slot_px.max(0.1)).ceil().max(1.0) as usize;
    ClassAxisLabels { rotated: true, step, font_px, names, height: widest.ceil() as u32 + 12 }
}

/// A legend entry: colour swatch and text.
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
}

const LEGEND_ROW: u32 = 20;
const LEGEND_FONT: f64 = 12.0;

/// Longest legend text (in characters) that fits one row of `width` pixels.
fn legend_max_chars(width: u32) -> usize {
    ((f64::from(width) - 60.0) / (0.6 * LEGEND_FONT)).max(8.0) as usize
}

fn legend_entry_width(e: &LegendEntry, width: u32) -> u32 {
    let chars = e.label.chars().count().min(legend_max_chars(width));
    (16.0 + 6.0 + 0.6 * LEGEND_FONT * chars as f64 + 18.0) as u32
}

/// Rows the legend needs when `width` pixels wide.
pub(crate) fn legend_height(entries: &[LegendEntry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let mut rows = 1;
    let mut x = 10;
    for e in entries {
        let w = legend_entry_width(e, width);
        if x + w > width && x > 10 {
            rows += 1;
            x = 10;
        }
        x += w;
    }
    rows * LEGEND_ROW + 6
}

/// Draws the legend in rows across `area` (pixel coordinates of that area).
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[LegendEntry],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let width = area.dim_in_pixel().0;
    let (mut x, mut y) = (10u32, 3u32);
    for e in entries {
        let w = legend_entry_width(e, width);
        if x + w > width && x > 10 {
            x = 10;
            y += LEGEND_ROW;
        }
        let (xi, yi) = (x as i32, y as i32);
        area.draw(&Rectangle::new([(xi, yi + 4), (xi + 16, yi + 14)], e.color.filled()))?;
        let label = truncate(&e.label, legend_max_chars(width));
        area.draw(&Text::new(label, (xi + 22, yi + 9), text_at(LEGEND_FONT, HPos::Left, VPos::Center)))?;
        x += w;
    }
    Ok(())
}

/// Sequential white-to-blue colour of a share in [0, 1]; light grey for NaN.
pub(crate) fn heat(v: f64) -> RGBColor {
    if v.is_nan() {
        return RGBColor(220, 220, 220);
    }
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [255.0, 255.0, 255.0]),
        (0.25, [198.0, 219.0, 239.0]),
        (0.5, [107.0, 174.0, 214.0]),
        (0.75, [33.0, 113.0, 181.0]),
        (1.0, [8.0, 48.0, 107.0]),
    ];
    let v = v.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|(s, _)| *s <= v).unwrap_or(0).min(STOPS.len() - 2);
    let (s0, c0) = STOPS[i];
    let (s1, c1) = STOPS[i + 1];
    let t = (v - s0) / (s1 - s0);
    let mix = |k: usize| (c0[k] + (c1[k] - c0[k]) * t).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

/// Formats a share as a percentage with one decimal; "–" for NaN.
pub fn percent(v: f64) -> String {
    if v.is_nan() { "–".to_string() } else { format!("{:.1}", 100.0 * v) }
}
