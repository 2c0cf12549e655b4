//! The learning-rate schedule setting (`--schedule`); lt-train evaluates it per step.

use std::fmt;
use std::str::FromStr;

/// The decay applied after warm-up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    Constant,
    /// Multiply by `factor` at the start of each listed epoch (1-based, like `--drw`):
    /// `step:160,180` (×0.1, torchvision's MultiStepLR default) or `step:160,180*0.01`
    /// (LDAM-DRW's CIFAR schedule: 0.1 → 0.001 → 0.00001).
    Step {
        at: Vec<usize>,
        factor: f64,
    },
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
                let Some(spec) = s.strip_prefix("step:") else {
                    return Err(format!(
                        "unknown schedule `{s}`: use constant, cosine, step:E1,E2,... (x0.1) or step:E1,E2,...*F"
                    ));
                };
                let (list, factor) = match spec.split_once('*') {
                    Some((list, f)) => {
                        let factor =
                            f.trim().parse::<f64>().map_err(|_| format!("schedule `{s}`: `{f}` is not a factor"))?;
                        if !(factor > 0.0 && factor.is_finite()) {
                            return Err(format!("schedule `{s}`: the factor must be a positive number"));
                        }
                        (list, factor)
                    }
                    None => (spec, 0.1),
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
                Ok(Schedule::Step { at: epochs, factor })
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Cosine => f.write_str("cosine"),
            Schedule::Step { at, factor } => {
                write!(f, "step:{}", at.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))?;
                // The default factor is left out, so `step:E1,E2` reads and writes as before.
                if *factor != 0.1 { write!(f, "*{factor}") } else { Ok(()) }
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
