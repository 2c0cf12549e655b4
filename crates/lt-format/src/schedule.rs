//! The learning-rate schedule setting (`--schedule`); lt-train evaluates it per step.

use std::fmt;
use std::str::FromStr;

/// The decay applied after warm-up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    Constant,
    /// Multiply by 0.1 at the start of each listed epoch (1-based, like `--drw`).
    Step(Vec<usize>),
    /// Cosine from the base rate to 0 over the run.
    Cosine,
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            _ => {
                let Some(list) = s.strip_prefix("step:") else {
                    return Err(format!("unknown schedule `{s}`: use constant, cosine or step:E1,E2,..."));
                };
                let epochs = list
                    .split(',')
                    .map(|e| {
                        e.trim().parse::<usize>().map_err(|_| format!("schedule `{s}`: `{e}` is not an epoch number"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if epochs.windows(2).any(|w| w[0] >= w[1]) || epochs.contains(&0) {
                    return Err(format!("schedule `{s}`: epochs must be increasing and >= 1"));
                }
                Ok(Schedule::Step(epochs))
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Cosine => f.write_str("cosine"),
            Schedule::Step(e) => {
                write!(f, "step:{}", e.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))
            }
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}
