use serde::{Deserialize, Serialize};

use crate::{EvalError, nan_mean, nan_null};

/// How classes are grouped by their number of training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShotSplit {
    /// `many`: count > `many_above`; `few`: count < `few_below`; `medium`: the rest.
    /// The literature's default (Liu et al., OLTR) is `many_above = 100`, `few_below = 20`.
    Thresholds { many_above: u64, few_below: u64 },
    /// `head` / `mid` / `tail`: classes sorted by count, most first (ties: lower label first),
    /// class at rank `r` of `C` goes to group `floor(3r / C)`; 10 classes give 4/3/3, 100 give
    /// 34/33/33. Useful when every class has more than 20 images (CIFAR-10-LT: >= 50).
    Thirds,
}

impl Default for ShotSplit {
    fn default() -> Self {
        Self::Thresholds { many_above: 100, few_below: 20 }
    }
}

impl ShotSplit {
    /// The three group names, in order.
    pub fn names(&self) -> [&'static str; 3] {
        match self {
            Self::Thresholds { .. } => ["many", "medium", "few"],
            Self::Thirds => ["head", "mid", "tail"],
        }
    }
}

/// One group of classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotGroup {
    /// `many`/`medium`/`few` or `head`/`mid`/`tail`.
    pub name: String,
    /// Labels in the group, in ascending order.
    pub classes: Vec<usize>,
    /// Training images of all classes in the group.
    pub train_images: u64,
    /// Mean per-class accuracy of the group's classes (classes whose accuracy is NaN, i.e.
    /// without test samples, are left out); NaN for a group without classes.
    #[serde(deserialize_with = "nan_null::f64")]
    pub accuracy: f64,
}

/// The three groups of a [`ShotSplit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotGroups {
    pub split: ShotSplit,
    pub groups: [ShotGroup; 3],
}

impl ShotGroups {
    /// The group named `name`, if this split has it.
    pub fn get(&self, name: &str) -> Option<&ShotGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The three accuracies in order (many, medium, few or head, mid, tail).
    pub fn accuracies(&self) -> [f64; 3] {
        [self.groups[0].accuracy, self.groups[1].accuracy, self.groups[2].accuracy]
    }

    /// Group index (0, 1, 2) of each class.
    pub fn group_of_class(&self, num_classes: usize) -> Vec<usize> {
        let mut out = vec![0; num_classes];
        for (g, group) in self.groups.iter().enumerate() {
            for &c in &group.classes {
                if c < num_classes {
                    out[c] = g;
                }
            }
        }
        out
    }
}

/// Groups classes by training count and averages their per-class accuracy.
///
/// # Panics
/// When the slices differ in length; [`try_shot_groups`] returns the error instead.
pub fn shot_groups(train_counts: &[u64], per_class_accuracy: &[f64], split: ShotSplit) -> ShotGroups {
    match try_shot_groups(train_counts, per_class_accuracy, split) {
        Ok(g) => g,
        Err(e) => panic!("shot_groups: {e}"),
    }
}

/// Like [`shot_groups`], with a length mismatch reported as [`EvalError`].
pub fn try_shot_groups(
    train_counts: &[u64],
    per_class_accuracy: &[f64],
    split: ShotSplit,
) -> Result<ShotGroups, EvalError> {
    if per_class_accuracy.len() != train_counts.len() {
        return Err(EvalError::LengthMismatch {
            what: "per_class_accuracy",
            actual: per_class_accuracy.len(),
            expected: train_counts.len(),
            why: "one accuracy per class of train_counts",
        });
    }
    let c = train_counts.len();
    let mut group = vec![0usize; c];
    match split {
        ShotSplit::Thresholds { many_above, few_below } => {
            for (g, &n) in group.iter_mut().zip(train_counts) {
                *g = if n > many_above {
                    0
                } else if n < few_below {
                    2
                } else {
                    1
                };
            }
        }
        ShotSplit::Thirds => {
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&a, &b| train_counts[b].cmp(&train_counts[a]).then(a.cmp(&b)));
            for (rank, &class) in order.iter().enumerate() {
                group[class] = 3 * rank / c;
            }
        }
    }
    let names = split.names();
    let groups = std::array::from_fn(|g| {
        let classes: Vec<usize> = (0..c).filter(|&k| group[k] == g).collect();
        ShotGroup {
            name: names[g].to_string(),
            train_images: classes.iter().map(|&k| train_counts[k]).sum(),
            accuracy: nan_mean(classes.iter().map(|&k| per_class_accuracy[k])),
            classes,
        }
    });
    Ok(ShotGroups { split, groups })
}
