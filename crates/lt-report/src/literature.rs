//! Published numbers printed beside lt's own (`lt-report --literature FILE.toml`): a TOML file
//! with a `[[row]]` array, each row `method`, `dataset`, `imbalance` (the imbalance factor),
//! `accuracy` (top-1, percent) and `source` (the citation). The report never re-runs them and
//! says so.
//!
//! The file is checked field by field so that an error names the file, the row and the field:
//! a literature table that silently dropped a row would misreport a paper.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One published result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiteratureRow {
    pub method: String,
    pub dataset: String,
    /// Imbalance factor: training images of the largest class over the smallest.
    pub imbalance: f64,
    /// Top-1 test accuracy in percent, as the paper reports it.
    pub accuracy: f64,
    /// Where the number comes from (citation text).
    pub source: String,
}

/// The rows of a literature file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Literature {
    #[serde(rename = "row")]
    pub rows: Vec<LiteratureRow>,
}

/// Why a literature file was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: {place}{message}; a literature file is a [[row]] array of method, dataset, imbalance, accuracy (percent), source"
)]
pub struct LiteratureError {
    pub path: PathBuf,
    /// 1-based `[[row]]` number, when the problem is in a row.
    pub row: Option<usize>,
    /// The field of that row, when one is at fault.
    pub field: Option<&'static str>,
    place: String,
    message: String,
}

impl LiteratureError {
    fn new(path: &Path, row: Option<usize>, field: Option<&'static str>, message: impl Into<String>) -> Self {
        let place = match (row, field) {
            (Some(r), Some(f)) => format!("row {r}, field `{f}`: "),
            (Some(r), None) => format!("row {r}: "),
            (None, _) => String::new(),
        };
        Self { path: path.to_path_buf(), row, field, place, message: message.into() }
    }
}

const FIELDS: [&str; 5] = ["method", "dataset", "imbalance", "accuracy", "source"];

impl Literature {
    /// Reads and checks a literature file.
    pub fn read(path: &Path) -> Result<Literature, LiteratureError> {
        let text = std::fs::read_to_string(path).map_err(|e| LiteratureError::new(path, None, None, e.to_string()))?;
        Self::parse(&text, path)
    }

    /// Parses the text of a literature file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Literature, LiteratureError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| LiteratureError::new(path, None, None, e.message().to_string()))?;
        if let Some(key) = doc.keys().find(|k| *k != "row") {
            return Err(LiteratureError::new(path, None, None, format!("unknown top-level key `{key}`")));
        }
        let rows = match doc.get("row") {
            None => return Err(LiteratureError::new(path, None, None, "no [[row]]")),
            Some(toml::Value::Array(rows)) => rows,
            Some(_) => {
                return Err(LiteratureError::new(path, None, None, "`row` must be an array of tables ([[row]])"));
            }
        };
        let rows = rows.iter().enumerate().map(|(i, row)| parse_row(row, i + 1, path)).collect::<Result<_, _>>()?;
        Ok(Literature { rows })
    }

    /// The file as TOML (what `lt run` writes for the report).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a literature table always serialises")
    }
}

fn parse_row(row: &toml::Value, number: usize, path: &Path) -> Result<LiteratureRow, LiteratureError> {
    let err = |field: Option<&'static str>, message: String| LiteratureError::new(path, Some(number), field, message);
    let table = row.as_table().ok_or_else(|| err(None, "not a table; write it as [[row]]".into()))?;
    if let Some(key) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(None, format!("unknown field `{key}`")));
    }
    let text = |field: &'static str| -> Result<String, LiteratureError> {
        match table.get(field) {
            None => Err(err(Some(field), "missing".into())),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(toml::Value::String(_)) => Err(err(Some(field), "empty".into())),
            Some(other) => Err(err(Some(field), format!("expected text, found {}", other.type_str()))),
        }
    };
    let number_in = |field: &'static str, lo: f64, hi: f64, what: &str| -> Result<f64, LiteratureError> {
        let v = match table.get(field) {
            None => return Err(err(Some(field), "missing".into())),
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(toml::Value::Float(f)) => *f,
            Some(other) => return Err(err(Some(field), format!("expected a number, found {}", other.type_str()))),
        };
        if !(lo..=hi).contains(&v) {
            return Err(err(Some(field), format!("{v} is not {what}")));
        }
        Ok(v)
    };
    Ok(LiteratureRow {
        method: text("method")?,
        dataset: text("dataset")?,
        imbalance: number_in("imbalance", 1.0, f64::MAX, "an imbalance factor (>= 1)")?,
        accuracy: number_in("accuracy", 0.0, 100.0, "a percentage (0 to 100)")?,
        source: text("source")?,
    })
}
