//! The losses by name on the command line: `logit-adjusted` is balanced softmax under the LA
//! paper's name (the same graph), `vs` is its own loss with `--vs-gamma` and `--tau`.

use std::path::Path;

use super::fixture::{lt_train, p, read_json, stderr, train_tiny, write_dataset};

fn train_graph(dir: &Path, name: &str, loss: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let mut args = vec!["graph", "--arch", "densenet-tiny", "--classes", "4", "--class-counts", "40,20,10,5"];
    args.extend(["--batch-size", "4", "--out", p(&out)]);
    args.extend(loss);
    let o = lt_train(&args);
    assert!(o.status.success(), "{loss:?}: {}", stderr(&o));
    std::fs::read(out.join("train.onnx")).unwrap()
}

#[test]
fn logit_adjusted_is_balanced_softmax_and_vs_is_its_own_loss() {
    let dir = tempfile::tempdir().unwrap();
    let bs = train_graph(dir.path(), "bs", &["--loss", "balanced-softmax", "--tau", "1.5"]);
    let la = train_graph(dir.path(), "la", &["--loss", "logit-adjusted", "--tau", "1.5"]);
    assert_eq!(bs, la, "logit-adjusted must build the balanced-softmax graph");
    let vs = train_graph(dir.path(), "vs", &["--loss", "vs", "--tau", "1.5", "--vs-gamma", "0.3"]);
    let vs0 = train_graph(dir.path(), "vs0", &["--loss", "vs", "--tau", "1.5", "--vs-gamma", "0"]);
    assert_ne!(vs, bs);
    assert_ne!(vs, vs0, "--vs-gamma must reach the graph");

    let data = dir.path().join("data");
    write_dataset(&data, &[24, 12, 8, 4], 4, 3);
    let run = dir.path().join("run");
    let o = train_tiny(&data, &run, 8, 1, &["--loss", "vs", "--vs-gamma", "0.25"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = read_json(&run.join("run.json"));
    assert_eq!(json["config"]["loss"], "vs");
    assert_eq!(json["config"]["vs_gamma"], 0.25);
    let bad = dir.path().join("bad");
    let o = train_tiny(&data, &bad, 8, 1, &["--loss", "vs", "--vs-gamma", "-1"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("vs_gamma"), "{e}");
}
