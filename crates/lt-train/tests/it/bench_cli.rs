//! The measuring subcommands: `agree` (two sides of the same training run) and
//! `bench-loader` (the loader alone).

use super::fixture::{lt_train, temp_dataset};

#[test]
fn agree_compares_the_cuda_formulation_with_the_cpu_one_on_the_cpu() {
    let args =
        ["agree", "--ep", "cpu", "--arch", "densenet-tiny", "--batch-size", "8", "--steps", "6", "--threads", "2"];
    let o = lt_train(&[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["sides"][1][1], "cuda");
    let a: Vec<f64> = serde_json::from_value(r["losses"][0].clone()).unwrap();
    let b: Vec<f64> = serde_json::from_value(r["losses"][1].clone()).unwrap();
    assert_eq!((a.len(), b.len()), (6, 6));
    assert!(a.iter().all(|l| l.is_finite() && *l > 0.0), "{a:?}");
    // Different batches each step: the curve moves.
    assert!(a.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-3), "{a:?}");
    assert!(r["max_relative_difference"].as_f64().unwrap() < 1e-3, "{r}");
    // An impossible tolerance is a failure with the figure in the message.
    let o = lt_train(&[&args[..], &["--tolerance", "0"]].concat());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("above the tolerance"));
}

#[test]
fn bench_loader_delivers_every_full_batch_of_each_epoch() {
    let (dir, data) = temp_dataset(&[30, 20, 10], 2, 3);
    let d = data.to_str().unwrap();
    let o = lt_train(&["bench-loader", "--data", d, "--batch-size", "16", "--epochs", "2", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["images"], 2 * 48, "60 images make 3 full batches of 16 per epoch");
    assert!(r["images_per_second"].as_f64().unwrap() > 0.0);
    let ra = ["--augment", "randaugment", "--randaugment-n", "3", "--randaugment-m", "15", "--cutout", "8"];
    let o =
        lt_train(&[&["bench-loader", "--data", d, "--batch-size", "16", "--epochs", "1", "--json"][..], &ra].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["params"], serde_json::json!({ "randaugment_n": 3, "randaugment_m": 15, "cutout": 8 }));
    let o = lt_train(&["bench-loader", "--data", d, "--randaugment-m", "31"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("randaugment_m"));
    let o = lt_train(&["bench-loader", "--data", dir.path().join("nothing").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("dataset.json"));
}

/// `bench --head-only` and `--sam` time other steps of the same network: the head-only step has
/// fewer nodes than the full one, SAM's (two passes) more.
#[test]
fn bench_times_the_head_only_and_the_sam_steps() {
    let base = ["bench", "--arch", "densenet-tiny", "--batch-size", "8", "--steps", "2", "--warmup", "1"];
    let nodes = |extra: &[&str], step: &str| {
        let o = lt_train(&[&base[..], &["--threads", "2", "--json"], extra].concat());
        assert!(o.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["step"], step);
        assert!(r["images_per_second"].as_f64().unwrap() > 0.0);
        r["graph_nodes"].as_u64().unwrap()
    };
    let full = nodes(&[], "full");
    let head = nodes(&["--head-only"], "head-only");
    let sam = nodes(&["--sam", "0.05"], "sam (rho 0.05)");
    assert!(head * 3 < full && full < sam, "nodes: head-only {head}, full {full}, sam {sam}");
}
