//! Figure 2, accuracy and loss per epoch.

use plotters::prelude::*;

use super::Figure;
use super::chart::{
    Ticked, XAxis, draw_mesh, header, header_height, nice_step, render, run_legend, share_label, share_ticks,
};
use crate::ReportError;
use crate::compare::ReportData;
use crate::experiments::Spread;
use crate::input::{MetricsRow, Run};
use crate::style::{color, text};
use std::collections::BTreeMap;

/// Which value of metrics.parquet a curve figure shows.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Curve {
    Accuracy,
    Loss,
}

/// Figure 2: accuracy or loss per epoch: one panel per split (train, val, test), one line per experiment (the mean of its seeds, over
/// their min–max band).
pub(super) fn curves(data: &ReportData, curve: Curve) -> Result<Figure, ReportError> {
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
    let value = |m: &MetricsRow| if curve == Curve::Accuracy { m.accuracy } else { m.loss };
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
                    Curve::Accuracy => share_ticks(),
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
                    Curve::Accuracy => share_label(v),
                    Curve::Loss => format!("{}", (v * 1000.0).round() / 1000.0),
                };
                let xfmt = |v: &f64| format!("{v:.0}");
                draw_mesh(&mut chart, XAxis::Values { desc: "epoch", format: &xfmt }, y_desc, &fmt)?;
                for (i, e) in data.experiments.iter().enumerate() {
                    let c = color(i);
                    let band = per_epoch(e.runs.iter().map(|&r| &data.runs[r]), split, &value);
                    if e.runs.len() > 1 {
                        // The min–max band of the seeds, under the mean line.
                        let outline: Vec<(f64, f64)> = band
                            .iter()
                            .map(|&(x, _, _, hi)| (x, hi))
                            .chain(band.iter().rev().map(|&(x, _, lo, _)| (x, lo)))
                            .collect();
                        chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2).filled())))?;
                    }
                    let points: Vec<(f64, f64)> = band.iter().map(|&(x, mean, _, _)| (x, mean)).collect();
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
        caption: if data.has_seeds() {
            format!(
                "{what} per epoch for each split in metrics.parquet; one colour per experiment: the line is the mean \
                 over its seeds, the shaded band their min–max."
            )
        } else {
            format!("{what} per epoch for each split in metrics.parquet; one colour per run.")
        },
        svg,
    })
}

/// Per epoch of `split` (sorted), the (epoch, mean, min, max) of `value` over `runs` (each
/// epoch over the runs that have a finite value for it).
fn per_epoch<'a>(
    runs: impl Iterator<Item = &'a Run>,
    split: &str,
    value: &dyn Fn(&MetricsRow) -> f64,
) -> Vec<(f64, f64, f64, f64)> {
    let mut by_epoch: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for m in run.metrics.iter().filter(|m| m.split == split && value(m).is_finite()) {
            by_epoch.entry(m.epoch).or_default().push(value(m));
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, v)| {
            let s = Spread::of(&v);
            (f64::from(epoch), s.mean, s.min, s.max)
        })
        .collect()
}
