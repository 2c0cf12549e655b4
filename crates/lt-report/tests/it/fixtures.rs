use std::path::{Path, PathBuf};

use lt_report::synthetic::{SyntheticRun, class_names, write_dataset, write_run};
use lt_report::{Options, Summary, generate};
use quick_xml::events::Event;

/// The SVG files every report has.
pub const FIGURES: [&str; 7] = [
    "class-distribution.svg",
    "curves-accuracy.svg",
    "curves-loss.svg",
    "confusion.svg",
    "per-class-accuracy.svg",
    "shot-groups.svg",
    "precision-recall.svg",
];

/// Two runs that differ only in the loss, plus a dataset directory with two manifests.
pub struct TwoRuns {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub runs: Vec<PathBuf>,
    pub data: PathBuf,
    pub names: Vec<String>,
}

pub fn two_runs(classes: usize) -> TwoRuns {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let names = if classes == 10 {
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            .map(String::from)
            .to_vec()
    } else {
        class_names(classes)
    };
    let mut runs = Vec::new();
    for (i, loss) in ["ce", "cb"].iter().enumerate() {
        let mut run = SyntheticRun::long_tailed(names.clone(), i as u64 + 1);
        run.epochs = 6;
        run.skill = 0.8 + 0.05 * i as f64;
        run.tail_drop = 0.6 - 0.3 * i as f64;
        run.config = serde_json::json!({
            "out": root.join(format!("run-{loss}")).display().to_string(),
            "seed": 1,
            "train": {"loss": loss, "epochs": 6, "sampler": "none"},
        });
        let dir = root.join(format!("run-{loss}"));
        write_run(&dir, &run).unwrap();
        runs.push(dir);
    }
    let counts = SyntheticRun::long_tailed(names.clone(), 0).train_counts;
    let data = root.join("data");
    write_dataset(&data, &names, &vec![5000; classes], &counts, &[("none", 2), ("oversample", 2)]).unwrap();
    TwoRuns { _tmp: tmp, root, runs, data, names }
}

pub fn report(fixture: &TwoRuns) -> (PathBuf, Summary) {
    let out = fixture.root.join("report");
    let mut options = Options::new(fixture.runs.clone(), &out);
    options.data = Some(fixture.data.clone());
    let summary = generate(&options).unwrap();
    (out, summary)
}

/// One `<text>` element of an SVG.
#[derive(Debug, Clone)]
pub struct SvgText {
    pub x: f64,
    pub y: f64,
    pub font_size: f64,
    pub anchor: String,
    pub rotated: bool,
    pub content: String,
}

#[derive(Debug, Default)]
pub struct Svg {
    pub width: f64,
    pub height: f64,
    pub texts: Vec<SvgText>,
    pub rects: usize,
}

impl Svg {
    pub fn has_text(&self, s: &str) -> bool {
        self.texts.iter().any(|t| t.content == s)
    }

    pub fn has_text_containing(&self, s: &str) -> bool {
        self.texts.iter().any(|t| t.content.contains(s))
    }
}

/// Parses SVG text as XML (quick-xml checks that end tags match), failing on any error.
pub fn parse_svg(text: &str, what: &str) -> Svg {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut svg = Svg::default();
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut current: Option<SvgText> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{what}: not well-formed XML at {}: {e}", reader.buffer_position()));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let attrs: Vec<(String, String)> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap_or_else(|err| panic!("{what}: bad attribute: {err}"));
                        (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), a.unescape_value().unwrap().into_owned())
                    })
                    .collect();
                let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                if depth == 0 {
                    assert_eq!(name, "svg", "{what}: root element is <{name}>");
                    roots += 1;
                    svg.width = attr("width").unwrap().parse().unwrap();
                    svg.height = attr("height").unwrap().parse().unwrap();
                }
                match name.as_str() {
                    "text" => {
                        current = Some(SvgText {
                            x: attr("x").unwrap().parse().unwrap(),
                            y: attr("y").unwrap().parse().unwrap(),
                            font_size: attr("font-size").unwrap().parse().unwrap(),
                            anchor: attr("text-anchor").unwrap_or_default(),
                            rotated: attr("transform")
                                .is_some_and(|t| t.starts_with("rotate(270") || t.starts_with("rotate(90")),
                            content: String::new(),
                        })
                    }
                    "rect" => svg.rects += 1,
                    _ => {}
                }
                if !is_empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth -= 1;
                if e.name().as_ref() == b"text" {
                    // plotters writes the text on its own line: the content is what is trimmed.
                    let mut t = current.take().expect("</text> without <text>");
                    t.content = t.content.trim().to_string();
                    svg.texts.push(t);
                }
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.content.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(c) = current.as_mut() {
                    let s = match r.decode().unwrap().as_ref() {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        _ => r.resolve_char_ref().unwrap().expect("unknown entity").to_string(),
                    };
                    c.content.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements at the end");
    assert_eq!(roots, 1, "{what}: expected one <svg> root");
    svg
}

pub fn read_svg(dir: &Path, file: &str) -> Svg {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    parse_svg(&text, file)
}
