use lt_format::tables::{
    MetricsRow, Predictions, TableError, read_metrics, read_predictions, write_metrics, write_predictions,
};

#[test]
fn metrics_and_predictions_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        MetricsRow {
            epoch: 1,
            split: "train".into(),
            loss: 1.5,
            accuracy: 0.5,
            balanced_accuracy: 0.25,
            per_class_accuracy: vec![0.5, 0.0],
        },
        MetricsRow {
            epoch: 1,
            split: "test".into(),
            loss: 2.0,
            accuracy: 0.4,
            balanced_accuracy: 0.3,
            per_class_accuracy: vec![0.6, f64::NAN],
        },
    ];
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
    let row = MetricsRow {
        epoch: 3,
        split: "val".into(),
        loss: 1.0,
        accuracy: 0.5,
        balanced_accuracy: 0.5,
        per_class_accuracy: vec![0.5; 4],
    };
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
    let row = MetricsRow {
        epoch: 2,
        split: "train".into(),
        loss: f64::NAN,
        accuracy: 0.5,
        balanced_accuracy: f64::NAN,
        per_class_accuracy: vec![0.5, f64::NAN],
    };
    let json = serde_json::to_string(&row).unwrap();
    assert!(json.contains("null"), "{json}");
    let back: MetricsRow = serde_json::from_str(&json).unwrap();
    assert!(back.loss.is_nan() && back.balanced_accuracy.is_nan() && back.per_class_accuracy[1].is_nan());
    assert_eq!((back.epoch, back.accuracy, back.per_class_accuracy[0]), (2, 0.5, 0.5));
}
