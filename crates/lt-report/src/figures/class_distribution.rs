//! Figure 1, class distribution.

use super::class_chart::{ClassSeries, Scale, class_chart};
use super::{Figure, in_order, names_in_order};
use crate::ReportError;
use crate::compare::ReportData;
use crate::style::color;

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
            // Seeds of one experiment share a label: it is named once.
            Some(i) => {
                let u = &mut users[i + usize::from(data.dataset.is_some())];
                if !u.contains(&label.as_str()) {
                    u.push(label);
                }
            }
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
    let all_runs = data.experiments.len();
    let runs_word = if data.has_seeds() { "experiments" } else { "runs" };
    let series: Vec<ClassSeries> = merged
        .into_iter()
        .enumerate()
        .map(|(i, (name, values, users))| ClassSeries {
            label: match users.len() {
                0 => name,
                n if n == all_runs && n > 2 => format!("{name} — all {n} {runs_word}"),
                _ => format!("{name} — runs: {}", users.join("; ")),
            },
            color: color(i),
            values: in_order(data, &values),
            spread: None,
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
