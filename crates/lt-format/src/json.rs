//! The JSON files of lt's formats (run.json, dataset.json): read with a size bound before
//! parsing, written as pretty JSON with a final newline.

use std::io::Read;
use std::path::Path;

/// Why a JSON file could not be read; each format names the file in its own error.
#[derive(Debug)]
pub(crate) enum JsonReadError {
    Io(std::io::Error),
    /// More than the format's limit of bytes.
    TooLarge,
    Parse(serde_json::Error),
}

/// The file at `path` as `T`, reading at most `max_bytes` bytes (a larger file is refused,
/// never read whole).
pub(crate) fn read_bounded<T: serde::de::DeserializeOwned>(path: &Path, max_bytes: u64) -> Result<T, JsonReadError> {
    let mut text = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(max_bytes + 1).read_to_end(&mut text)).map_err(JsonReadError::Io)?;
    if text.len() as u64 > max_bytes {
        return Err(JsonReadError::TooLarge);
    }
    serde_json::from_slice(&text).map_err(JsonReadError::Parse)
}

/// `value` as the formats write it: pretty, keys in declaration order, a final newline.
pub(crate) fn to_pretty_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("lt's records always serialise");
    text.push('\n');
    text
}
