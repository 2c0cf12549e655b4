//! Manifests: only subset indices, exact shapes, per-class frequencies within statistical
//! tolerance of the target distribution.

use std::collections::{HashMap, HashSet};

use lt_data::profile::{Profile, select_subset};
use lt_data::resample::{Strategy, class_probabilities, manifest};

use crate::helpers::{balanced_labels, names};

/// A CIFAR-10-LT (IF=100) subset of a balanced 10x5000 label vector.
fn lt_subset() -> (Vec<u32>, Vec<u16>, Vec<u16>) {
    let all = balanced_labels(5000);
    let p = Profile::Exp { imbalance: 100.0, n_max: None, shuffle_classes: false };
    let idx = select_subset(&all, &names(10), &p, 1).unwrap();
    let labels = idx.iter().map(|&i| all[i as usize]).collect();
    (idx, labels, all)
}

const COUNTS: [u64; 10] = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];

/// Per-class visits of one epoch.
fn class_counts(m: &lt_data::Manifest, epoch: u32, all: &[u16]) -> Vec<u64> {
    let mut c = vec![0u64; 10];
    for (e, i) in m.epoch.iter().zip(&m.index) {
        if *e == epoch {
            c[all[*i as usize] as usize] += 1;
        }
    }
    c
}

/// Each class count within 5 binomial standard deviations (plus 1) of len * p.
fn within_tolerance(counts: &[u64], probs: &[f64]) {
    let n: u64 = counts.iter().sum();
    for (c, (&k, &p)) in counts.iter().zip(probs).enumerate() {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (k as f64 - mean).abs() <= 5.0 * sd + 1.0,
            "class {c}: {k} visits, expected {mean:.1} +- {:.1}; counts {counts:?}",
            5.0 * sd
        );
    }
}

fn check_common(m: &lt_data::Manifest, subset: &[u32], epochs: u32) {
    let allowed: HashSet<u32> = subset.iter().copied().collect();
    assert!(m.index.iter().all(|i| allowed.contains(i)), "only subset indices");
    assert_eq!(m.epoch.len(), m.index.len());
    assert_eq!(m.position.len(), m.index.len());
    let mut per_epoch: HashMap<u32, u32> = HashMap::new();
    for (e, p) in m.epoch.iter().zip(&m.position) {
        let next = per_epoch.entry(*e).or_default();
        assert_eq!(*p, *next, "positions count up from 0 within an epoch");
        *next += 1;
    }
    assert_eq!(per_epoch.len() as u32, epochs);
}

#[test]
fn instance_is_a_permutation_per_epoch() {
    let (idx, labels, _) = lt_subset();
    let m = manifest(&Strategy::Instance, &idx, &labels, 10, 3, 5).unwrap();
    check_common(&m, &idx, 3);
    let n = idx.len();
    for e in 0..3 {
        let mut ep: Vec<u32> = m.index[e * n..(e + 1) * n].to_vec();
        assert_ne!(ep, idx, "shuffled");
        ep.sort_unstable();
        assert_eq!(ep, idx);
    }
    assert_ne!(m.index[..n], m.index[n..2 * n], "epochs differ");
}

#[test]
fn random_over_tops_every_class_up_to_the_largest() {
    let (idx, labels, all) = lt_subset();
    let m = manifest(&Strategy::RandomOver, &idx, &labels, 10, 2, 5).unwrap();
    check_common(&m, &idx, 2);
    for e in 0..2 {
        assert_eq!(class_counts(&m, e, &all), vec![5000; 10]);
    }
    // Every original image appears at least once per epoch.
    let first: HashSet<u32> = m.index[..50_000].iter().copied().collect();
    assert!(idx.iter().all(|i| first.contains(i)));
}

#[test]
fn random_under_cuts_every_class_to_the_smallest_without_repeats() {
    let (idx, labels, all) = lt_subset();
    let m = manifest(&Strategy::RandomUnder, &idx, &labels, 10, 2, 5).unwrap();
    check_common(&m, &idx, 2);
    assert_eq!(class_counts(&m, 0, &all), vec![50; 10]);
    let first: HashSet<u32> = m.index[..500].iter().copied().collect();
    assert_eq!(first.len(), 500, "no image twice in an epoch");
    assert_ne!(m.index[..500], m.index[500..], "epochs differ");
}

#[test]
fn class_balanced_and_sqrt_and_effective_number_frequencies() {
    let (idx, labels, all) = lt_subset();
    let total: u64 = COUNTS.iter().sum();
    let sqrt_sum: f64 = COUNTS.iter().map(|&n| (n as f64).sqrt()).sum();
    let beta = 0.999;
    let en: Vec<f64> = COUNTS.iter().map(|&n| n as f64 * (1.0 - beta) / (1.0 - f64::powf(beta, n as f64))).collect();
    let en_sum: f64 = en.iter().sum();
    let cases: Vec<(Strategy, Vec<f64>)> = vec![
        (Strategy::ClassBalanced, vec![0.1; 10]),
        (Strategy::Sqrt, COUNTS.iter().map(|&n| (n as f64).sqrt() / sqrt_sum).collect()),
        (Strategy::EffectiveNumber { beta }, en.iter().map(|w| w / en_sum).collect()),
    ];
    for (s, probs) in cases {
        let m = manifest(&s, &idx, &labels, 10, 2, 11).unwrap();
        check_common(&m, &idx, 2);
        assert_eq!(m.len() as u64, 2 * total, "{}: epoch length = subset size", s.name());
        for e in 0..2 {
            within_tolerance(&class_counts(&m, e, &all), &probs);
        }
        let lib = class_probabilities(&s, &COUNTS, 0, 2).unwrap();
        for (a, b) in lib.iter().zip(&probs) {
            assert!((a - b).abs() < 1e-12, "{}: {lib:?} vs {probs:?}", s.name());
        }
    }
}

#[test]
fn progressive_moves_from_instance_to_class_balanced() {
    let (idx, labels, all) = lt_subset();
    let epochs = 4;
    let m = manifest(&Strategy::Progressive, &idx, &labels, 10, epochs, 2).unwrap();
    check_common(&m, &idx, epochs);
    let total: u64 = COUNTS.iter().sum();
    for e in 0..epochs {
        let t = f64::from(e + 1) / f64::from(epochs);
        let probs: Vec<f64> = COUNTS.iter().map(|&n| t * 0.1 + (1.0 - t) * n as f64 / total as f64).collect();
        within_tolerance(&class_counts(&m, e, &all), &probs);
    }
    // The last epoch is fully class-balanced.
    within_tolerance(&class_counts(&m, epochs - 1, &all), &[0.1; 10]);
}

#[test]
fn manifests_are_seeded() {
    let (idx, labels, _) = lt_subset();
    for name in <lt_format::vocab::Resampler as lt_format::Vocab>::names() {
        let s = Strategy::parse(name, Some(0.99)).unwrap();
        let a = manifest(&s, &idx, &labels, 10, 2, 42).unwrap();
        assert_eq!(a, manifest(&s, &idx, &labels, 10, 2, 42).unwrap(), "{name}");
        assert_ne!(a.index, manifest(&s, &idx, &labels, 10, 2, 43).unwrap().index, "{name}");
    }
}

#[test]
fn bad_resampler_arguments() {
    let (idx, labels, _) = lt_subset();
    assert!(Strategy::parse("smote", None).unwrap_err().to_string().contains("unknown resampler"));
    assert!(Strategy::parse("effective-number", None).is_err());
    assert!(Strategy::parse("effective-number", Some(1.0)).is_err());
    assert!(manifest(&Strategy::Instance, &idx, &labels, 10, 0, 0).is_err());
    assert!(manifest(&Strategy::Instance, &[], &[], 10, 1, 0).is_err());
}

/// `--resample ""` wrote no manifest without a word; an empty list or name is now an error
/// listing the valid names.
#[test]
fn empty_resampler_list_is_refused() {
    for empty in ["", " ", ","] {
        let e = Strategy::parse_list(empty, None).unwrap_err().to_string();
        assert!(
            e.contains("empty")
                && <lt_format::vocab::Resampler as lt_format::Vocab>::names().iter().all(|n| e.contains(n)),
            "{empty:?}: {e}"
        );
    }
    let e = Strategy::parse_list("instance,,sqrt", None).unwrap_err().to_string();
    assert!(e.contains("`instance,,sqrt`: name 2 is empty") && e.contains("class-balanced"), "{e}");
    assert!(Strategy::parse_list("instance,", None).unwrap_err().to_string().contains("name 2 is empty"));
    assert_eq!(
        Strategy::parse_list("instance, effective-number", Some(0.5)).unwrap(),
        [Strategy::Instance, Strategy::EffectiveNumber { beta: 0.5 }]
    );
    assert!(Strategy::parse_list("instance,smote", None).unwrap_err().to_string().contains("unknown resampler"));
}

/// epochs x rows is bounded before the manifest is built (`--epochs 4294967295`).
#[test]
fn manifest_rows_are_bounded() {
    let (idx, labels, _) = lt_subset();
    let e = manifest(&Strategy::Instance, &idx, &labels, 10, u32::MAX, 0).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "manifest instance: 4294967295 epochs x 12406 rows = {} rows",
            12406u64 * u64::from(u32::MAX)
        )) && e.contains(&format!("over the limit of {}", lt_data::resample::MAX_MANIFEST_ROWS)),
        "{e}"
    );
    // random-over's epoch is the largest class times the class count.
    let epochs = (lt_data::resample::MAX_MANIFEST_ROWS / 50_000 + 1) as u32;
    let e = manifest(&Strategy::RandomOver, &idx, &labels, 10, epochs, 0).unwrap_err().to_string();
    assert!(e.contains(&format!("{epochs} epochs x 50000 rows")), "{e}");
}
