//! clap value parsers for the vocabulary (feature `cli`, for the binaries only): `--help`
//! lists every name with its one-line doc, and aliases are accepted.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::vocab::Vocab;

/// A value parser for `T`: `#[arg(long, value_parser = lt_format::cli::vocab::<LossKind>())]`.
pub fn vocab<T: Vocab + Send + Sync + Clone>() -> impl TypedValueParser<Value = T> {
    let values =
        T::ALL.iter().map(|&v| PossibleValue::new(v.name()).help(v.doc()).aliases(v.aliases().iter().copied()));
    PossibleValuesParser::new(values).map(|s| T::parse_name(&s).expect("clap checked the name against the vocabulary"))
}
