//! index.html, summary.md and summary.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lt_eval::{ClassificationReport, ShotGroups, ShotSplit};
use lt_format::run::SelectionRule;
use serde::Serialize;

use crate::compare::ReportData;
use crate::experiments::Spread;
use crate::figures::Figure;
use crate::literature::{Literature, LiteratureRow};
use crate::style::percent;

/// One run's row of the summary table (summary.json `runs[]`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub label: String,
    pub dir: PathBuf,
    /// The differing settings of this run (key -> value).
    pub settings: BTreeMap<String, String>,
    /// The rule that chose the reported epoch, and the validation split it read.
    pub selection: SelectionRule,
    pub validation: Option<String>,
    pub epochs: u32,
    pub test_samples: u64,
    #[serde(flatten)]
    pub headline: Headline<f64>,
    /// The groups of each of `summary.shot_splits`.
    pub shot_groups: Vec<ShotGroups>,
    pub report: ClassificationReport,
}

/// One experiment's row of the summary table (summary.json `experiments[]`): its runs (the
/// seeds) and each metric's mean, sample standard deviation, min and max over them.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    pub label: String,
    /// Run directories, in the order given.
    pub runs: Vec<PathBuf>,
    /// Number of runs (seeds).
    pub n: usize,
    /// The differing settings of this experiment (a setting that varies by seed lists the
    /// runs' values: `0, 1, 2`).
    pub settings: BTreeMap<String, String>,
    /// How each run's reported epoch was chosen, in words.
    pub protocol: String,
    pub epochs: Spread,
    #[serde(flatten)]
    pub headline: Headline<Spread>,
    /// Per class (by label).
    pub per_class_accuracy: Vec<Spread>,
}

/// The test metrics of the summary table's columns: one run's (`f64`), or their [`Spread`]
/// over an experiment's seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Headline<T> {
    pub accuracy: T,
    pub balanced_accuracy: T,
    /// Accuracy per shot group, in the order of `summary.group_names`.
    pub group_accuracy: Vec<T>,
    pub gmean: T,
    pub macro_f1: T,
    pub ece: T,
}

impl Headline<f64> {
    fn of_run(data: &ReportData, i: usize) -> Self {
        let r = &data.runs[i];
        Headline {
            accuracy: r.report.accuracy,
            balanced_accuracy: r.report.balanced_accuracy,
            group_accuracy: data.shots[i].iter().flat_map(|g| g.accuracies()).collect(),
            gmean: r.report.gmean,
            macro_f1: r.report.macro_f1,
            ece: r.ece,
        }
    }
}

impl Headline<Spread> {
    /// Each metric's spread over `runs`, with `groups` shot groups (NaN for a group a run
    /// lacks).
    fn over(runs: &[&Headline<f64>], groups: usize) -> Self {
        let spread =
            |value: &dyn Fn(&Headline<f64>) -> f64| Spread::of(&runs.iter().map(|h| value(h)).collect::<Vec<_>>());
        Headline {
            accuracy: spread(&|h| h.accuracy),
            balanced_accuracy: spread(&|h| h.balanced_accuracy),
            group_accuracy: (0..groups)
                .map(|g| spread(&|h| h.group_accuracy.get(g).copied().unwrap_or(f64::NAN)))
                .collect(),
            gmean: spread(&|h| h.gmean),
            macro_f1: spread(&|h| h.macro_f1),
            ece: spread(&|h| h.ece),
        }
    }
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
    /// The runs grouped into experiments (seeds of one experiment), in table order.
    pub experiments: Vec<ExperimentSummary>,
    /// Published numbers (`--literature`), printed beside lt's; never re-run.
    pub literature: Vec<LiteratureRow>,
    /// Figure files, in report order.
    pub figures: Vec<String>,
}

pub(crate) fn summary(data: &ReportData, title: &str, figures: &[Figure], literature: Literature) -> Summary {
    let mut experiment_of = vec![0; data.runs.len()];
    for (e, exp) in data.experiments.iter().enumerate() {
        for &i in &exp.runs {
            experiment_of[i] = e;
        }
    }
    let runs: Vec<RunSummary> = data
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| RunSummary {
            label: data.labels[i].clone(),
            dir: r.dir.clone(),
            settings: data.settings.values[experiment_of[i]].clone(),
            selection: r.selection,
            validation: r.validation.clone(),
            epochs: r.epochs(),
            test_samples: r.report.samples,
            headline: Headline::of_run(data, i),
            shot_groups: data.shots[i].clone(),
            report: r.report.clone(),
        })
        .collect();
    let experiments = data
        .experiments
        .iter()
        .zip(&data.settings.values)
        .map(|(e, settings)| {
            let spread = |value: &dyn Fn(usize, &crate::input::Run) -> f64| e.spread(&data.runs, value);
            let groups = data.group_names().len();
            let mut protocols: Vec<String> = Vec::new();
            for &i in &e.runs {
                let p = data.runs[i].protocol();
                if !protocols.contains(&p) {
                    protocols.push(p);
                }
            }
            ExperimentSummary {
                label: e.label.clone(),
                runs: e.runs.iter().map(|&i| data.runs[i].dir.clone()).collect(),
                n: e.runs.len(),
                settings: settings.clone(),
                protocol: protocols.join(" / "),
                epochs: spread(&|_, r| f64::from(r.epochs())),
                headline: Headline::over(&e.runs.iter().map(|&i| &runs[i].headline).collect::<Vec<_>>(), groups),
                per_class_accuracy: (0..data.class_names.len())
                    .map(|c| spread(&|_, r| r.report.per_class_accuracy[c]))
                    .collect(),
            }
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
        experiments,
        literature: literature.rows,
        figures: figures.iter().map(|f| f.file.to_string()).collect(),
    }
}

fn ratio(v: f64) -> String {
    if v.is_nan() { "–".to_string() } else { format!("{v:.3}") }
}

/// A percentage with its spread over seeds: `71.3 ± 0.4`, or `71.3` for one run.
fn percent_spread(s: &Spread) -> String {
    match s.std {
        Some(std) if !s.mean.is_nan() => format!("{} ± {:.1}", percent(s.mean), 100.0 * std),
        _ => percent(s.mean),
    }
}

/// A ratio with its spread over seeds: `0.712 ± 0.004`, or `0.712` for one run.
fn ratio_spread(s: &Spread) -> String {
    match s.std {
        Some(std) if !s.mean.is_nan() => format!("{} ± {std:.3}", ratio(s.mean)),
        _ => ratio(s.mean),
    }
}

/// Epochs run: `10`, or `8–10` where the seeds ran different numbers.
fn epochs_text(s: &Spread) -> String {
    if s.min == s.max { format!("{}", s.min) } else { format!("{}–{}", s.min, s.max) }
}

/// Whether some experiment has more than one run: then every row says its n.
fn has_seeds(s: &Summary) -> bool {
    s.experiments.iter().any(|e| e.n > 1)
}

/// The summary table as (header, rows) of plain strings: one row per experiment.
fn table(s: &Summary) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["run".to_string()];
    header.extend(s.differing_settings.iter().cloned());
    header.extend(["overall %", "balanced %"].map(String::from));
    header.extend(s.group_names.iter().map(|g| format!("{g} %")));
    header.extend(["G-mean", "macro-F1", "ECE", "epochs run"].map(String::from));
    let seeds = has_seeds(s);
    let rows = s
        .experiments
        .iter()
        .map(|e| {
            let mut row = vec![if seeds { format!("{} (n={})", e.label, e.n) } else { e.label.clone() }];
            row.extend(s.differing_settings.iter().map(|k| e.settings.get(k).cloned().unwrap_or_default()));
            let h = &e.headline;
            row.push(percent_spread(&h.accuracy));
            row.push(percent_spread(&h.balanced_accuracy));
            row.extend(h.group_accuracy.iter().map(percent_spread));
            row.extend([
                ratio_spread(&h.gmean),
                ratio_spread(&h.macro_f1),
                ratio_spread(&h.ece),
                epochs_text(&e.epochs),
            ]);
            row
        })
        .collect();
    (header, rows)
}

/// What the numbers are: the metrics, the spread over seeds, and which rule chose each
/// experiment's reported epoch.
fn table_note(s: &Summary, gmean_source: &str) -> String {
    let what = if has_seeds(s) {
        "Test-set metrics of each run's reported epoch: mean ± sample standard deviation (n − 1) over the n runs (seeds) of each experiment"
    } else {
        "Test-set metrics of the final predictions"
    };
    format!(
        "{what}. Accuracies in percent; balanced = mean per-class accuracy; {}; \
         G-mean = geometric mean of per-class recalls ({gmean_source}); ECE = expected calibration error ({} bins). {}",
        splits_text(s),
        crate::input::ECE_BINS,
        protocol_text(s)
    )
}

/// Which rule chose the reported epoch, per experiment (experiments sharing a rule together).
fn protocol_text(s: &Summary) -> String {
    let mut by_rule: Vec<(&str, Vec<&str>)> = Vec::new();
    for e in &s.experiments {
        match by_rule.iter_mut().find(|(p, _)| *p == e.protocol) {
            Some((_, labels)) => labels.push(&e.label),
            None => by_rule.push((&e.protocol, vec![&e.label])),
        }
    }
    let rules = match by_rule.as_slice() {
        [(p, _)] => format!("{p} for every run"),
        _ => by_rule.iter().map(|(p, labels)| format!("{}: {p}", labels.join(", "))).collect::<Vec<_>>().join("; "),
    };
    format!("Reported epoch (the test split never chooses it): {rules}.")
}

/// The literature rows as (header, rows) of plain strings.
fn literature_table(s: &Summary) -> (Vec<String>, Vec<Vec<String>>) {
    let header = ["method", "dataset", "imbalance factor", "accuracy %", "source"].map(String::from).to_vec();
    let rows = s
        .literature
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.dataset.clone(),
                format!("{}", r.imbalance),
                format!("{}", r.accuracy),
                r.source.clone(),
            ]
        })
        .collect();
    (header, rows)
}

const LITERATURE_HEADING: &str = "Published results (from the papers, not re-run by lt)";
const LITERATURE_NOTE: &str = "Top-1 test accuracy as each paper reports it. lt did not run these: the papers' \
     networks, budgets and epoch selection (often the best epoch on the test set) differ from the runs above, so \
     read them as context, not as a like-for-like comparison.";

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
    out.push_str(&format!("\n{}\n", table_note(s, "imbalanced-learn")));
    if !s.literature.is_empty() {
        let (header, rows) = literature_table(s);
        out.push_str(&format!("\n## {LITERATURE_HEADING}\n\n"));
        out.push_str(&format!("| {} |\n", header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
        out.push_str("|---|---|---:|---:|---|\n");
        for row in rows {
            out.push_str(&format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
        }
        out.push_str(&format!("\n{LITERATURE_NOTE}\n"));
    }
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
        "<p class=\"note\">{} runs{}, {} classes{}. Files: <a href=\"summary.md\">summary.md</a>, <a href=\"summary.json\">summary.json</a>.</p>\n",
        s.runs.len(),
        if has_seeds(s) { format!(" ({} experiments)", s.experiments.len()) } else { String::new() },
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
    h.push_str(&format!("<p class=\"note\">{}</p>\n", escape(&table_note(s, "imbalanced-learn's definition"))));
    if !s.literature.is_empty() {
        let (header, rows) = literature_table(s);
        h.push_str(&format!("<h2>{}</h2>\n<table>\n<thead><tr>", escape(LITERATURE_HEADING)));
        for col in &header {
            h.push_str(&format!("<th>{}</th>", escape(col)));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for row in rows {
            h.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let class = if i == 2 || i == 3 { " class=\"num\"" } else { "" };
                h.push_str(&format!("<td{class}>{}</td>", escape(c)));
            }
            h.push_str("</tr>\n");
        }
        h.push_str(&format!("</tbody>\n</table>\n<p class=\"note\">{}</p>\n", escape(LITERATURE_NOTE)));
    }
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
