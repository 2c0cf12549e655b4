use lt_format::tables::{
    MetricsRow, Predictions, TableError, read_metrics, read_predictions, write_metrics, write_predictions,
};

/// A metrics row: `[loss, accuracy, balanced_accuracy]` and the per-class accuracies.
fn row(epoch: u32, split: &str, [loss, accuracy, balanced_accuracy]: [f64; 3], per_class: Vec<f64>) -> MetricsRow {
    MetricsRow { epoch, split: split.into(), loss, accuracy, balanced_accuracy, per_class_accuracy: per_class }
}

#[test]
fn metrics_and_predictions_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let rows =
        vec![row(1, "train", [1.5, 0.5, 0.25], vec![0.5, 0.0]), row(1, "test", [2.0, 0.4, 0.3], vec![0.6, f64::NAN])];
    let m = dir.path().join("metrics.parquet");
    write_metrics(&m, &rows).unwrap();
    let back = read_metrics(&m, 2).unwrap();
    assert_eq!(back[0], rows[0]);
    assert!(back[1].per_class_accuracy[1].is_nan());

    let mut p = Predictions { num_classes: 3, ..Default::default() };
    let probs = p.push_logits(7, 2, &[0.0, 1.0, 3.0]);
    p.push_logits(9, 0, &[2.0, 2.0, -1.0]);
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(p.prediction, vec![2, 0]);
    let path = dir.path().join("predictions.parquet");
    write_predictions(&path, &p).unwrap();
    assert_eq!(read_predictions(&path, 3).unwrap(), p);
    // The same rows give the same bytes.
    let again = dir.path().join("again.parquet");
    write_predictions(&again, &p).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn a_row_with_the_wrong_class_count_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("metrics.parquet");
    let row = row(3, "val", [1.0, 0.5, 0.5], vec![0.5; 4]);
    write_metrics(&m, &[row]).unwrap();
    let err = read_metrics(&m, 10).unwrap_err();
    assert!(matches!(err, TableError::Invalid { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("metrics.parquet") && text.contains("epoch 3, val") && text.contains("4 values"), "{text}");
}

#[test]
fn a_metrics_row_with_nan_reads_back_from_json() {
    // Checkpoints keep their metric rows as JSON, where NaN (a class absent from a split) is
    // null: a resumed or validation-chosen run reads them back.
    let row = row(2, "train", [f64::NAN, 0.5, f64::NAN], vec![0.5, f64::NAN]);
    let json = serde_json::to_string(&row).unwrap();
    assert!(json.contains("null"), "{json}");
    let back: MetricsRow = serde_json::from_str(&json).unwrap();
    assert!(back.loss.is_nan() && back.balanced_accuracy.is_nan() && back.per_class_accuracy[1].is_nan());
    assert_eq!((back.epoch, back.accuracy, back.per_class_accuracy[0]), (2, 0.5, 0.5));
}
