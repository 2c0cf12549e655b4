//! Class weights.

use lt_data::weights::{Normalize, WeightScheme, class_weights};

const COUNTS: [u64; 4] = [1000, 100, 10, 1];

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

#[test]
fn schemes_raw() {
    let w = |s| class_weights(&COUNTS, &s, Normalize::None).unwrap();
    close(&w(WeightScheme::None), &[1.0; 4]);
    close(&w(WeightScheme::Inverse), &[0.001, 0.01, 0.1, 1.0]);
    close(&w(WeightScheme::InverseSqrt), &[1.0 / 1000f64.sqrt(), 0.1, 1.0 / 10f64.sqrt(), 1.0]);
    let b: f64 = 0.99;
    close(&w(WeightScheme::EffectiveNumber { beta: b }), &COUNTS.map(|n| (1.0 - b) / (1.0 - b.powf(n as f64))));
}

#[test]
fn classes_normalisation_sums_to_c_and_keeps_ratios() {
    for s in [WeightScheme::Inverse, WeightScheme::InverseSqrt, WeightScheme::EffectiveNumber { beta: 0.9999 }] {
        let raw = class_weights(&COUNTS, &s, Normalize::None).unwrap();
        let n = class_weights(&COUNTS, &s, Normalize::Classes).unwrap();
        assert!((n.iter().sum::<f64>() - 4.0).abs() < 1e-9, "{n:?}");
        close(&n.iter().map(|x| x / n[0]).collect::<Vec<_>>(), &raw.iter().map(|x| x / raw[0]).collect::<Vec<_>>());
    }
}

#[test]
fn seed_project_weights_unnormalised() {
    // The course project: beta = (N-1)/N, N = 23,654, raw values.
    let counts = lt_data::profile::SEED_COUNTS;
    let n: u64 = counts.iter().sum();
    let beta = (n as f64 - 1.0) / n as f64;
    let w = class_weights(&counts, &WeightScheme::EffectiveNumber { beta }, Normalize::None).unwrap();
    // The rarest class (152 images) gets the largest weight; the weights are about 1/(n_c)
    // for n_c << N.
    let max = w.iter().cloned().fold(0.0, f64::max);
    assert_eq!(w[9], max);
    assert!((w[9] * 152.0 - 1.0).abs() < 0.01, "{}", w[9] * 152.0);
}

#[test]
fn beta_outside_unit_interval_is_refused() {
    for b in [1.0, 1.5, -0.1, f64::NAN] {
        let e = class_weights(&COUNTS, &WeightScheme::EffectiveNumber { beta: b }, Normalize::Classes).unwrap_err();
        assert!(e.to_string().contains("outside [0, 1)"), "{e}");
    }
    assert!(WeightScheme::parse("effective-number", None).is_err());
    assert!(WeightScheme::parse("focal", None).unwrap_err().to_string().contains("unknown weight scheme"));
}

#[test]
fn empty_classes_get_zero_and_empty_input_errors() {
    let w = class_weights(&[10, 0, 10], &WeightScheme::Inverse, Normalize::Classes).unwrap();
    assert_eq!(w[1], 0.0);
    assert!((w[0] - 1.5).abs() < 1e-12);
    assert!(class_weights(&[], &WeightScheme::None, Normalize::None).is_err());
    assert!(class_weights(&[0, 0], &WeightScheme::None, Normalize::None).is_err());
}
