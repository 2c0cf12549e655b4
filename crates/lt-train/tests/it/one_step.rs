//! The PyTorch-comparison mode: with `--epochs 1 --batch-size N --no-augment --no-shuffle
//! --resample instance` and N = the subset size, a run is exactly ONE SGD step on the whole
//! subset in index order. Checked against a step of the training graph driven directly, from
//! the same seeded initial weights, on images normalised here by the formula in run.json.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use lt_graph::models::{densenet, preset};
use lt_graph::train::{Lowering, Sgd, StateKind, TrainingGraphSpec, tensor_f32};
use lt_train::dataset::Dataset;

use super::fixture::{flags, p, read_json, write_dataset};
use super::graph_util::{Trainer, ce};

fn initializers(path: &Path) -> HashMap<String, Vec<f32>> {
    let model = lt_graph::onnx::load(path).unwrap();
    model.graph.unwrap().initializer.iter().map(|t| (t.name.clone(), tensor_f32(t).unwrap())).collect()
}

#[test]
fn one_epoch_of_the_whole_subset_is_one_sgd_step_in_index_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let counts = [6usize, 5, 4, 3];
    // The fixture's "instance" manifest visits epoch 0 in REVERSED index order:
    // --no-shuffle must still give index order.
    write_dataset(&data, &counts, 2, 11);
    let run = dir.path().join("run");
    let n = counts.iter().sum::<usize>().to_string();
    let mut args = vec!["--data", p(&data), "--out", p(&run), "--batch-size", &n, "--threads", "2", "--quiet"];
    args.extend(flags(
        "--arch densenet-tiny --epochs 1 --no-augment --no-shuffle --resample instance --ep cpu --seed 3 \
         --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --schedule constant --weights inverse",
    ));
    let o = Command::new(env!("CARGO_BIN_EXE_lt-train")).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_json = read_json(&run.join("run.json"));
    let floats = |v: &serde_json::Value| -> Vec<f32> { serde_json::from_value(v.clone()).unwrap() };
    let (mean, std) = (floats(&run_json["normalization"]["mean"]), floats(&run_json["normalization"]["std"]));
    let class_weights = floats(&run_json["class_weights"]["weights"]);

    // The same step by hand: seeded initial weights, the whole subset in index order.
    let dataset = Dataset::open(&data).unwrap();
    let plane = 32 * 32;
    let mut images = Vec::new();
    for &i in &dataset.subset {
        let img = &dataset.train.images[i as usize * 3 * plane..(i as usize + 1) * 3 * plane];
        images.extend(img.iter().enumerate().map(|(k, &v)| (v as f32 / 255.0 - mean[k / plane]) / std[k / plane]));
    }
    let labels: Vec<i64> = dataset.subset.iter().map(|&i| dataset.train.labels[i as usize] as i64).collect();
    assert!(labels.windows(2).any(|w| w[0] != w[1]), "the fixture interleaves classes");
    let inference = densenet(&preset("densenet-tiny", 4).unwrap(), 3).unwrap();
    let spec = TrainingGraphSpec {
        batch_size: labels.len(),
        loss: ce(),
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
        class_counts: counts.iter().map(|&c| c as u64).collect(),
        lowering: Lowering::Cpu,
        mixed_labels: false,
    };
    let mut t = Trainer::new(&inference, &spec, 0);
    (t.images, t.labels, t.class_weights) = (images, labels, class_weights);
    let initial = t.state.clone();
    t.step(0.05);
    let one_step = t.state.clone();
    t.step(0.05);

    let trained = initializers(&run.join("model.onnx"));
    let mut checked = 0;
    for s in t.tg.state.iter().filter(|s| s.kind != StateKind::Momentum) {
        let got = &trained[&s.name];
        let dist = |v: &Vec<f32>| got.iter().zip(v).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = one_step[&s.name].iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        assert!(
            dist(&one_step[&s.name]) <= 1e-5 * scale,
            "{}: differs from one step by {}",
            s.name,
            dist(&one_step[&s.name])
        );
        if s.kind == StateKind::Parameter {
            // Sharp: zero steps and two steps are both far away.
            assert!(dist(&initial[&s.name]) > 100.0 * dist(&one_step[&s.name]), "{}: no step taken", s.name);
        }
        checked += 1;
    }
    assert!(checked > 10, "only {checked} tensors compared");
    let two_steps_away = t.tg.state.iter().filter(|s| s.kind == StateKind::Parameter).any(|s| {
        let got = &trained[&s.name];
        got.iter().zip(&t.state[&s.name]).any(|(a, b)| (a - b).abs() > 1e-4)
    });
    assert!(two_steps_away, "the run's weights equal two steps too");
}
