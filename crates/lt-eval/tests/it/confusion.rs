use lt_eval::{ConfusionMatrix, EvalError};

use crate::assert_all_close;

#[test]
fn counts_rows_are_labels_columns_are_predictions() {
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
    assert_eq!(cm.counts, vec![2, 1, 0, 0, 1, 1, 0, 0, 1]);
    assert_eq!(cm.get(0, 1), 1);
    assert_eq!(cm.get(1, 0), 0);
    assert_eq!(cm.row_totals(), vec![3, 2, 1]);
    assert_eq!(cm.column_totals(), vec![2, 2, 2]);
    assert_eq!(cm.diagonal(), vec![2, 1, 1]);
    assert_eq!(cm.total(), 6);
}

#[test]
fn row_normalised_divides_by_the_row_total() {
    // Row and column totals differ, so dividing by the wrong axis (the seed's bug) would
    // give other numbers: column 0 total is 2, row 0 total is 3.
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
    let n = cm.row_normalized();
    assert_all_close(&n, &[2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 1.0]);
    for t in 0..3 {
        let s: f64 = n[t * 3..t * 3 + 3].iter().sum();
        assert!((s - 1.0).abs() < 1e-12, "row {t} sums to {s}");
    }
}

#[test]
fn row_of_a_class_without_samples_is_nan() {
    let cm = ConfusionMatrix::from_predictions(&[0, 0], &[0, 1], 3);
    let n = cm.row_normalized();
    assert_all_close(&n, &[0.5, 0.5, 0.0, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN]);
}

#[test]
fn out_of_range_values_are_errors_with_position() {
    let err = ConfusionMatrix::try_from_predictions(&[0, 1, 3], &[0, 1, 1], 3).unwrap_err();
    assert_eq!(err, EvalError::ClassOutOfRange { what: "labels", position: 2, value: 3, num_classes: 3 });
    assert!(err.to_string().contains("labels[2] = 3"), "{err}");
    let err = ConfusionMatrix::try_from_predictions(&[0, 1], &[7, 1], 3).unwrap_err();
    assert!(matches!(err, EvalError::ClassOutOfRange { what: "predictions", position: 0, value: 7, .. }));
    let err = ConfusionMatrix::try_from_predictions(&[0, 1], &[0], 3).unwrap_err();
    assert!(matches!(err, EvalError::LengthMismatch { actual: 1, expected: 2, .. }));
    assert_eq!(ConfusionMatrix::try_from_predictions(&[], &[], 0).unwrap_err(), EvalError::NoClasses);
    assert!(ConfusionMatrix::from_counts(2, vec![1, 2, 3]).is_err());
    assert_eq!(ConfusionMatrix::from_counts(2, vec![1, 2, 3, 4]).unwrap().get(1, 0), 3);
}

#[test]
#[should_panic(expected = "predictions[1] = 5 is not a class")]
fn from_predictions_panics_on_a_caller_bug() {
    ConfusionMatrix::from_predictions(&[0, 1], &[0, 5], 3);
}
