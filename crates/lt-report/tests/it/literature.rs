//! `--literature FILE.toml`: published numbers beside lt's, and malformed files refused with
//! the file, row and field named.

use std::path::Path;

use lt_report::{Literature, LiteratureRow, Options, ReportError, generate};

use crate::fixtures::two_runs;

fn rows() -> Literature {
    Literature {
        rows: vec![
            LiteratureRow {
                method: "LDAM-DRW".into(),
                dataset: "CIFAR-10-LT".into(),
                imbalance: 100.0,
                accuracy: 77.03,
                source: "Cao et al., NeurIPS 2019, Table 2".into(),
            },
            LiteratureRow {
                method: "CB focal | β=0.9999".into(),
                dataset: "CIFAR-10-LT".into(),
                imbalance: 50.0,
                accuracy: 79.27,
                source: "Cui et al., CVPR 2019 <Table 2>".into(),
            },
        ],
    }
}

#[test]
fn a_literature_file_round_trips_and_is_printed_beside_the_table() {
    let f = two_runs(10);
    let file = f.root.join("literature.toml");
    std::fs::write(&file, rows().to_toml()).unwrap();
    assert_eq!(Literature::read(&file).unwrap(), rows());

    let out = f.root.join("report");
    let mut options = Options::new(f.runs.clone(), &out);
    options.literature = Some(file);
    let summary = generate(&options).unwrap();
    assert_eq!(summary.literature, rows().rows);

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let heading = md.find("## Published results (from the papers, not re-run by lt)").expect("heading");
    assert!(heading > md.find("| run-ce |").unwrap(), "after lt's table: {md}");
    assert!(md.contains("| LDAM-DRW | CIFAR-10-LT | 100 | 77.03 | Cao et al., NeurIPS 2019, Table 2 |"), "{md}");
    assert!(md.contains("| CB focal \\| β=0.9999 | CIFAR-10-LT | 50 | 79.27 |"), "{md}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<h2>Published results (from the papers, not re-run by lt)</h2>"));
    assert!(html.contains("<td>Cui et al., CVPR 2019 &lt;Table 2&gt;</td>"), "escaped");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["literature"][0]["accuracy"], 77.03);

    // Without the option, no such section.
    let summary = generate(&Options::new(f.runs.clone(), &out)).unwrap();
    assert!(summary.literature.is_empty());
    assert!(!std::fs::read_to_string(out.join("summary.md")).unwrap().contains("Published results"));
}

fn refused(text: &str) -> lt_report::LiteratureError {
    Literature::parse(text, Path::new("papers.toml")).unwrap_err()
}

#[test]
fn a_malformed_literature_file_is_refused_naming_file_row_and_field() {
    let good = "[[row]]\nmethod = \"CE\"\ndataset = \"CIFAR-10-LT\"\nimbalance = 100\naccuracy = 70.36\nsource = \"Cao et al.\"\n";
    assert_eq!(Literature::parse(good, Path::new("papers.toml")).unwrap().rows[0].imbalance, 100.0);
    let cases: [(String, Option<usize>, Option<&str>, &str); 7] = [
        (
            format!(
                "{good}\n[[row]]\nmethod = \"x\"\ndataset = \"d\"\nimbalance = 10\naccuracy = \"high\"\nsource = \"s\"\n"
            ),
            Some(2),
            Some("accuracy"),
            "expected a number, found string",
        ),
        (good.replace("accuracy = 70.36", "accuracy = 0.7036e3"), Some(1), Some("accuracy"), "not a percentage"),
        (good.replace("source = \"Cao et al.\"\n", ""), Some(1), Some("source"), "missing"),
        (good.replace("method = \"CE\"", "method = \" \""), Some(1), Some("method"), "empty"),
        (good.replace("imbalance = 100", "imbalance = 0.5"), Some(1), Some("imbalance"), "imbalance factor"),
        (good.replace("imbalance = 100", "imbalance = 100\nepochs = 200"), Some(1), None, "unknown field `epochs`"),
        ("title = \"papers\"\n".to_string(), None, None, "unknown top-level key `title`"),
    ];
    for (text, row, field, says) in cases {
        let e = refused(&text);
        assert_eq!((e.row, e.field), (row, field), "{e}");
        let message = e.to_string();
        assert!(message.starts_with("papers.toml: "), "{message}");
        assert!(message.contains(says), "{message} lacks {says:?}");
        if let (Some(r), Some(f)) = (row, field) {
            assert!(message.contains(&format!("row {r}, field `{f}`")), "{message}");
        }
    }
    assert!(refused("[[row]\n").to_string().starts_with("papers.toml: "), "TOML syntax errors name the file");
    assert!(refused("").to_string().contains("no [[row]]"));

    // Through the report: nothing is written, the error names the file.
    let f = two_runs(10);
    let file = f.root.join("bad.toml");
    std::fs::write(&file, good.replace("accuracy = 70.36", "accuracy = 170")).unwrap();
    let mut options = Options::new(f.runs.clone(), f.root.join("out"));
    options.literature = Some(file.clone());
    let err = generate(&options).unwrap_err();
    assert!(matches!(err, ReportError::Literature(_)), "{err}");
    assert!(err.to_string().contains(&format!("{}: row 1, field `accuracy`", file.display())), "{err}");
    assert!(!f.root.join("out").exists());
}
