use lt_eval::{EvalError, calibration, expected_calibration_error};

#[test]
fn two_bins_by_hand() {
    // conf .9 right, .8 wrong, .6 right -> bin (0.5, 1]: conf 2.3/3, acc 2/3, gap 0.1;
    // [.5, .5] ties pick class 0 (wrong), conf 0.5 -> bin [0, 0.5]: gap 0.5.
    // ECE = 1/4 · 0.5 + 3/4 · 0.1 = 0.2; MCE = 0.5.
    let scores = [0.9, 0.1, 0.8, 0.2, 0.4, 0.6, 0.5, 0.5];
    let labels = [0, 1, 1, 1];
    let c = calibration(&scores, &labels, 2, 2).unwrap();
    assert!((c.ece - 0.2).abs() < 1e-6, "{c:?}");
    assert!((c.mce - 0.5).abs() < 1e-6, "{c:?}");
    assert_eq!(c.bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![1, 3]);
    assert!((c.bins[1].accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert!((c.bins[1].mean_confidence - 2.3 / 3.0).abs() < 1e-6);
    assert!((expected_calibration_error(&scores, &labels, 2, 2) - 0.2).abs() < 1e-6);
}

#[test]
fn confident_and_right_is_calibrated_and_empty_bins_are_nan() {
    let scores = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let c = calibration(&scores, &[0, 1], 3, 15).unwrap();
    assert_eq!(c.ece, 0.0);
    assert_eq!(c.bins[14].count, 2);
    assert!(c.bins[0].accuracy.is_nan() && c.bins[0].mean_confidence.is_nan());
}

#[test]
fn no_samples_is_nan_and_bad_shapes_are_errors() {
    assert!(expected_calibration_error(&[], &[], 10, 15).is_nan());
    assert!(matches!(calibration(&[0.5; 5], &[0, 1], 3, 15), Err(EvalError::LengthMismatch { actual: 5, .. })));
    assert_eq!(calibration(&[0.5; 4], &[0, 1], 2, 0).unwrap_err(), EvalError::NoBins);
    assert!(matches!(
        calibration(&[0.5; 4], &[0, 2], 2, 15),
        Err(EvalError::ClassOutOfRange { what: "labels", position: 1, value: 2, .. })
    ));
}
