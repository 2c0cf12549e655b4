use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use lt_format::tables::TableError;
use lt_report::synthetic::{SyntheticRun, class_names, write_run};
use lt_report::{Options, ReportError, generate};

use crate::fixtures::two_runs;

fn write_table(path: &std::path::Path, batch: RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn a_missing_file_is_named() {
    let f = two_runs(10);
    std::fs::remove_file(f.runs[1].join("predictions.parquet")).unwrap();
    let err = generate(&Options::new(f.runs.clone(), f.root.join("out"))).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("run-cb/predictions.parquet"), "{err}");
    assert!(!f.root.join("out").exists(), "nothing is written when an input is bad");
}

#[test]
fn wrong_or_missing_columns_name_file_and_column() {
    let f = two_runs(10);
    let metrics = f.runs[0].join("metrics.parquet");
    let schema =
        Schema::new(vec![Field::new("epoch", DataType::UInt32, false), Field::new("split", DataType::UInt32, false)]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(UInt32Array::from(vec![1])), Arc::new(UInt32Array::from(vec![2]))],
    )
    .unwrap();
    write_table(&metrics, batch);
    let err = generate(&Options::new(f.runs.clone(), f.root.join("out"))).unwrap_err();
    assert!(matches!(err, ReportError::Table(TableError::ColumnType { column: "split", .. })), "{err}");
    assert!(err.to_string().contains("metrics.parquet") && err.to_string().contains("utf8"), "{err}");

    let schema = Schema::new(vec![Field::new("epoch", DataType::UInt32, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(UInt32Array::from(vec![1]))]).unwrap();
    write_table(&metrics, batch);
    let err = generate(&Options::new(f.runs.clone(), f.root.join("out"))).unwrap_err();
    assert!(matches!(err, ReportError::Table(TableError::MissingColumn { column: "split", .. })), "{err}");
}

#[test]
fn runs_of_different_datasets_are_refused() {
    let f = two_runs(10);
    let other = f.root.join("run-cifar100");
    write_run(&other, &SyntheticRun::long_tailed(class_names(100), 3)).unwrap();
    let err = generate(&Options::new(vec![f.runs[0].clone(), other], f.root.join("out"))).unwrap_err();
    assert!(matches!(err, ReportError::ClassesDiffer { a_classes: 10, b_classes: 100, .. }), "{err}");
    let err = generate(&Options::new(vec![], f.root.join("out"))).unwrap_err();
    assert!(matches!(err, ReportError::NoRuns), "{err}");
}

#[test]
fn a_label_outside_the_classes_is_an_error_not_a_panic() {
    let f = two_runs(10);
    let path = f.runs[0].join("run.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Claim 9 classes: predictions of class 9 no longer fit.
    json["class_names"] = serde_json::json!(class_names(9));
    json["train_counts"] = serde_json::json!(vec![10; 9]);
    std::fs::write(&path, json.to_string()).unwrap();
    let err = generate(&Options::new(vec![f.runs[0].clone()], f.root.join("out"))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("run-ce/") && (text.contains("has 10 values") || text.contains("not a class")), "{text}");
}
