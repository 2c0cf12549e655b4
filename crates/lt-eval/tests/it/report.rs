use lt_eval::{ClassificationReport, ConfusionMatrix, classification_report, geometric_mean};

use crate::{assert_all_close, assert_close};

#[test]
fn three_classes_by_hand() {
    // cm = [[2,1,0],[0,1,1],[0,0,1]]: support [3,2,1], predicted [2,2,2], tp [2,1,1].
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
    let r = classification_report(&cm);
    assert_eq!(r.samples, 6);
    assert_close(r.accuracy, 4.0 / 6.0);
    assert_all_close(&r.per_class_accuracy, &[2.0 / 3.0, 0.5, 1.0]);
    assert_close(r.balanced_accuracy, 13.0 / 18.0);
    assert_all_close(&r.precision, &[1.0, 0.5, 0.5]);
    // F1 = 2PR/(P+R): class 0: 2·1·(2/3)/(5/3) = 0.8; class 1: 0.5; class 2: 2·0.5·1/1.5 = 2/3.
    assert_all_close(&r.f1, &[0.8, 0.5, 2.0 / 3.0]);
    assert_close(r.macro_f1, 59.0 / 90.0);
    assert_close(r.macro_precision, 2.0 / 3.0);
    assert_close(r.gmean, (1.0f64 / 3.0).powf(1.0 / 3.0));
    assert_eq!(r.support, vec![3, 2, 1]);
    assert_eq!(r.predicted, vec![2, 2, 2]);
}

#[test]
fn gmean_matches_imbalanced_learn_docstring() {
    // imblearn: geometric_mean_score([0,1,2,0,1,2], [0,2,1,0,0,1]) == 0.0, and
    // with correction=0.001 == 0.01 (recalls [1, 0, 0]).
    let cm = ConfusionMatrix::from_predictions(&[0, 1, 2, 0, 1, 2], &[0, 2, 1, 0, 0, 1], 3);
    assert_close(classification_report(&cm).gmean, 0.0);
    assert!((geometric_mean(&cm, 0.001) - 0.01).abs() < 1e-15);
}

#[test]
fn empty_and_never_predicted_classes_have_documented_values() {
    // 4 classes; class 2 has no samples but is predicted once; class 3 is absent everywhere.
    // support [2,2,0,0], predicted [1,2,1,0], tp [1,1,0,0].
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 1, 1], &[0, 1, 1, 2], 4);
    let r = classification_report(&cm);
    assert_all_close(&r.per_class_accuracy, &[0.5, 0.5, f64::NAN, f64::NAN]);
    assert_close(r.balanced_accuracy, 0.5);
    assert_all_close(&r.precision, &[1.0, 0.5, 0.0, 0.0]);
    assert_all_close(&r.f1, &[2.0 / 3.0, 0.5, 0.0, 0.0]);
    // scikit-learn f1_score(average="macro") over the labels present {0,1,2}: (2/3 + 1/2 + 0)/3.
    assert_close(r.macro_f1, 7.0 / 18.0);
    assert_close(r.macro_precision, 0.5);
    // imblearn: class 2 is present (predicted) with recall 0/0 -> 0, so the G-mean is 0 ...
    assert_close(r.gmean, 0.0);
    // ... unless corrected; class 3 (absent) stays out of the mean.
    assert_close(geometric_mean(&cm, 0.1), (0.5f64 * 0.5 * 0.1).powf(1.0 / 3.0));
}

#[test]
fn a_class_with_samples_that_is_never_predicted() {
    // Class 1 has 2 samples, all predicted as 0.
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 1, 1], &[0, 0, 0, 0], 2);
    let r = classification_report(&cm);
    assert_all_close(&r.per_class_accuracy, &[1.0, 0.0]);
    assert_all_close(&r.precision, &[0.5, 0.0]);
    assert_all_close(&r.f1, &[2.0 / 3.0, 0.0]);
    assert_close(r.balanced_accuracy, 0.5);
    assert_close(r.gmean, 0.0);
}

#[test]
fn no_samples_gives_nan_not_a_panic() {
    let cm = ConfusionMatrix::from_predictions(&[], &[], 3);
    let r = classification_report(&cm);
    assert_eq!(r.samples, 0);
    for v in [r.accuracy, r.balanced_accuracy, r.macro_f1, r.macro_precision, r.gmean] {
        assert!(v.is_nan(), "{r:?}");
    }
    assert_all_close(&r.f1, &[0.0; 3]);
}

#[test]
fn perfect_predictions() {
    let labels: Vec<usize> = (0..100).map(|i| i % 10).collect();
    let cm = ConfusionMatrix::from_predictions(&labels, &labels, 10);
    let r = classification_report(&cm);
    for v in [r.accuracy, r.balanced_accuracy, r.macro_f1, r.gmean] {
        assert_close(v, 1.0);
    }
}

#[test]
fn serialises_nan_as_null_and_reads_it_back() {
    let cm = ConfusionMatrix::from_predictions(&[0, 0, 1, 1], &[0, 1, 1, 2], 4);
    let r = classification_report(&cm);
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"per_class_accuracy\":[0.5,0.5,null,null]"), "{json}");
    let back: ClassificationReport = serde_json::from_str(&json).unwrap();
    assert_all_close(&back.per_class_accuracy, &r.per_class_accuracy);
    assert_close(back.macro_f1, r.macro_f1);
    let empty = classification_report(&ConfusionMatrix::zeros(2));
    let back: ClassificationReport = serde_json::from_str(&serde_json::to_string(&empty).unwrap()).unwrap();
    assert!(back.accuracy.is_nan() && back.gmean.is_nan());
}
