//! index.html, summary.md and summary.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lt_eval::{ClassificationReport, ShotGroups, ShotSplit};
use serde::Serialize;

use crate::compare::ReportData;
use crate::figures::Figure;
use crate::style::percent;

/// One run's row of the summary table (summary.json `runs[]`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub label: String,
    pub dir: PathBuf,
    /// The differing settings of this run (key -> value).
    pub settings: BTreeMap<String, String>,
    pub epochs: u32,
    pub test_samples: u64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    /// Accuracy per shot group, in the order of `summary.group_names`.
    pub group_accuracy: Vec<f64>,
    pub gmean: f64,
    pub macro_f1: f64,
    pub ece: f64,
    /// The groups of each of `summary.shot_splits`.
    pub shot_groups: Vec<ShotGroups>,
    pub report: ClassificationReport,
}

/// summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub title: String,
    pub class_names: Vec<String>,
    /// Labels head to tail.
    pub class_order: Vec<usize>,
    /// The splits into shot groups, in order (head/mid/tail thirds, then many/medium/few).
    pub shot_splits: Vec<ShotSplit>,
    /// The groups of every split, in order.
    pub group_names: Vec<&'static str>,
    /// Config keys whose values differ between the runs.
    pub differing_settings: Vec<String>,
    pub dataset: Option<PathBuf>,
    pub runs: Vec<RunSummary>,
    /// Figure files, in report order.
    pub figures: Vec<String>,
}

pub(crate) fn summary(data: &ReportData, title: &str, figures: &[Figure]) -> Summary {
    let runs = data
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| RunSummary {
            label: data.labels[i].clone(),
            dir: r.dir.clone(),
            settings: data.settings.values[i].clone(),
            epochs: r.epochs(),
            test_samples: r.report.samples,
            accuracy: r.report.accuracy,
            balanced_accuracy: r.report.balanced_accuracy,
            group_accuracy: data.shots[i].iter().flat_map(|g| g.accuracies()).collect(),
            gmean: r.report.gmean,
            macro_f1: r.report.macro_f1,
            ece: r.ece,
            shot_groups: data.shots[i].clone(),
            report: r.report.clone(),
        })
        .collect();
    Summary {
        title: title.to_string(),
        class_names: data.class_names.clone(),
        class_order: data.order.clone(),
        shot_splits: data.splits.clone(),
        group_names: data.group_names(),
        differing_settings: data.settings.keys.clone(),
        dataset: data.dataset.as_ref().map(|d| d.dir.clone()),
        runs,
        figures: figures.iter().map(|f| f.file.to_string()).collect(),
    }
}

fn ratio(v: f64) -> String {
    if v.is_nan() { "–".to_string() } else { format!("{v:.3}") }
}

/// The summary table as (header, rows) of plain strings.
fn table(s: &Summary) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["run".to_string()];
    header.extend(s.differing_settings.iter().cloned());
    header.extend(["overall %", "balanced %"].map(String::from));
    header.extend(s.group_names.iter().map(|g| format!("{g} %")));
    header.extend(["G-mean", "macro-F1", "ECE", "epochs run"].map(String::from));
    let rows = s
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![r.label.clone()];
            row.extend(s.differing_settings.iter().map(|k| r.settings.get(k).cloned().unwrap_or_default()));
            row.push(percent(r.accuracy));
            row.push(percent(r.balanced_accuracy));
            row.extend(r.group_accuracy.iter().map(|&v| percent(v)));
            row.extend([ratio(r.gmean), ratio(r.macro_f1), ratio(r.ece), r.epochs.to_string()]);
            row
        })
        .collect();
    (header, rows)
}

/// How one split groups classes, in words.
pub(crate) fn split_text(split: ShotSplit) -> String {
    match split {
        ShotSplit::Thresholds { many_above, few_below } => format!(
            "many/medium/few: classes with more than {many_above}, {few_below} to {many_above}, fewer than {few_below} training images"
        ),
        ShotSplit::Thirds => "head/mid/tail: classes sorted by training images and cut into thirds".to_string(),
    }
}

fn splits_text(s: &Summary) -> String {
    let mut text = s.shot_splits.iter().map(|&split| split_text(split)).collect::<Vec<_>>().join("; ");
    text.push_str(" (– marks a group without classes)");
    text
}

pub(crate) fn markdown(s: &Summary) -> String {
    let (header, rows) = table(s);
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("# {}\n\n", cell(&s.title));
    out.push_str(&format!("| {} |\n", header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
    out.push_str(&format!(
        "|{}\n",
        header.iter().enumerate().map(|(i, _)| if i == 0 { "---|" } else { "---:|" }).collect::<String>()
    ));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
    }
    out.push_str(&format!(
        "\nTest-set metrics of the final predictions. Accuracies in percent; balanced = mean per-class accuracy; {}; \
         G-mean = geometric mean of per-class recalls (imbalanced-learn); ECE = expected calibration error ({} bins).\n",
        splits_text(s),
        crate::input::ECE_BINS
    ));
    out
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn index_html(s: &Summary, figures: &[Figure]) -> String {
    let (header, rows) = table(s);
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(&format!("<title>{}</title>\n", escape(&s.title)));
    h.push_str(
        "<style>\n\
         body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }\n\
         table { border-collapse: collapse; margin: 12px 0 24px; }\n\
         th, td { border: 1px solid #ccc; padding: 4px 10px; }\n\
         th { background: #eef3f8; }\n\
         td.num { text-align: right; font-variant-numeric: tabular-nums; }\n\
         figure { margin: 28px 0; }\n\
         figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }\n\
         figcaption { color: #555; font-size: 14px; margin-top: 4px; }\n\
         .note { color: #555; font-size: 14px; }\n\
         </style>\n</head>\n<body>\n",
    );
    h.push_str(&format!("<h1>{}</h1>\n", escape(&s.title)));
    h.push_str(&format!(
        "<p class=\"note\">{} runs, {} classes{}. Files: <a href=\"summary.md\">summary.md</a>, <a href=\"summary.json\">summary.json</a>.</p>\n",
        s.runs.len(),
        s.class_names.len(),
        s.dataset.as_ref().map(|d| format!(", dataset {}", escape(&d.display().to_string()))).unwrap_or_default()
    ));
    h.push_str("<h2>Summary</h2>\n<table>\n<thead><tr>");
    for col in &header {
        h.push_str(&format!("<th>{}</th>", escape(col)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let first_metric = 1 + s.differing_settings.len();
    for row in rows {
        h.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if i >= first_metric { " class=\"num\"" } else { "" };
            h.push_str(&format!("<td{class}>{}</td>", escape(c)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    h.push_str(&format!(
        "<p class=\"note\">Test-set metrics of the final predictions. Accuracies in percent; balanced = mean per-class accuracy; {}; \
         G-mean = geometric mean of per-class recalls (imbalanced-learn's definition); ECE = expected calibration error ({} bins).</p>\n",
        escape(&splits_text(s)),
        crate::input::ECE_BINS
    ));
    h.push_str("<h2>Figures</h2>\n");
    for f in figures {
        h.push_str(&format!("<figure id=\"{}\">\n", escape(f.file.trim_end_matches(".svg"))));
        h.push_str(&f.svg);
        h.push_str(&format!(
            "\n<figcaption>{} <a href=\"{}\">{}</a></figcaption>\n</figure>\n",
            escape(&f.caption),
            escape(f.file),
            escape(f.file)
        ));
    }
    h.push_str("</body>\n</html>\n");
    h
}
