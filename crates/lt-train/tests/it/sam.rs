//! SAM's step (`--sam`): checked by composing plain steps by hand. The plain step with lr 0
//! gives the gradient g at w; ε is computed here from g; the plain step at w + ε gives g'.
//! SAM's one step must then report the first pass's loss, logits and running statistics, and
//! update w (not w + ε) with g'. The PyTorch agreement of the same step is `golden_step.rs`.

use std::collections::HashMap;

use lt_graph::train::{Lowering, Sam, StateKind, StepOptions, training_graph, training_graph_with};

use super::fixture::{read_json, stderr, temp_dataset, train_tiny};
use crate::graph_util::{Trainer, ce, dense_block_net, grad_sgd, spec};

fn sam_options(rho: f32, adaptive: bool) -> StepOptions {
    StepOptions { sam: Some(Sam { rho, adaptive }), ..StepOptions::default() }
}

/// Largest |a − b| relative to the largest |b| of the tensor.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().map(|v| v.abs() as f64).fold(1e-6, f64::max);
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max) / scale
}

fn check_against_composed_plain_steps(rho: f32, adaptive: bool, lowering: Lowering) {
    let model = dense_block_net(5, 6, 11, true);
    let sp = spec(6, 5, ce(), grad_sgd(), lowering);
    let mut plain = Trainer::new(&model, &sp, 3);
    let mut sam = Trainer::with_options(&model, &sp, &sam_options(rho, adaptive), 3);
    let w = plain.state.clone();
    let params = plain.params();
    let first = plain.run_with(&w, 0.0);
    // ε = ρ·(w² if adaptive)·g / (‖(w if adaptive)·g‖ + 1e-12), the norm over all parameters.
    let g: HashMap<&str, &Vec<f32>> =
        params.iter().map(|p| (p.as_str(), &first[&format!("{p}.momentum.new")])).collect();
    let factor = |x: f32| if adaptive { x } else { 1.0 };
    let norm = params
        .iter()
        .flat_map(|p| w[p].iter().zip(g[p.as_str()]))
        .map(|(&x, &gx)| ((factor(x) * gx) as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let mut shifted = w.clone();
    for p in &params {
        for (x, &gx) in shifted.get_mut(p).unwrap().iter_mut().zip(g[p.as_str()]) {
            *x += (rho as f64 * (factor(*x) * factor(*x) * gx) as f64 / (norm + 1e-12)) as f32;
        }
    }
    let second = plain.run_with(&shifted, 0.0);
    let lr = 0.25;
    let out = sam.run_with(&w, lr);
    let mut worst = Vec::new();
    let mut expect = |what: String, got: &[f32], want: &[f32]| worst.push((rel_diff(got, want), what));
    expect("loss".into(), &out["loss"], &first["loss"]);
    expect("logits".into(), &out["logits"], &first["logits"]);
    for p in &params {
        let g2 = &second[&format!("{p}.momentum.new")];
        expect(format!("{p} gradient"), &out[&format!("{p}.momentum.new")], g2);
        let updated: Vec<f32> = w[p].iter().zip(g2).map(|(x, g)| x - lr * g).collect();
        expect(format!("{p} update"), &out[&format!("{p}.new")], &updated);
    }
    for s in sam.tg.state.iter().filter(|s| matches!(s.kind, StateKind::RunningMean | StateKind::RunningVar)) {
        expect(format!("{} (first pass)", s.name), &out[&s.output], &first[&s.output]);
    }
    let (err, what) = worst.iter().cloned().fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    assert!(err < 2e-5, "SAM (rho {rho}, adaptive {adaptive}, {lowering:?}): {what} differs by {err:.2e}");
    // The perturbation is not negligible: the two gradients differ.
    let moved =
        params.iter().map(|p| rel_diff(&second[&format!("{p}.momentum.new")], g[p.as_str()])).fold(0.0, f64::max);
    assert!(moved > 1e-3, "ρ = {rho} barely moved the gradient ({moved:.2e}): the test would not see SAM");
}

#[test]
fn sam_updates_the_weights_with_the_gradient_at_the_perturbed_point() {
    check_against_composed_plain_steps(0.05, false, Lowering::Cpu);
    check_against_composed_plain_steps(0.05, false, Lowering::Cuda);
    check_against_composed_plain_steps(0.5, true, Lowering::Cpu);
}

#[test]
fn sam_is_off_by_default_and_refuses_a_radius_that_is_not_positive() {
    let model = dense_block_net(5, 6, 11, true);
    let sp = spec(6, 5, ce(), grad_sgd(), Lowering::Cpu);
    let plain = training_graph(&model, &sp).unwrap();
    let default = training_graph_with(&model, &sp, &StepOptions::default()).unwrap();
    assert_eq!(lt_graph::onnx::encode(&plain.model), lt_graph::onnx::encode(&default.model));
    let two_pass = training_graph_with(&model, &sp, &sam_options(0.05, false)).unwrap();
    let nodes = |tg: &lt_graph::train::TrainingGraph| tg.model.graph.as_ref().unwrap().node.len();
    assert!(nodes(&two_pass) > nodes(&plain) * 3 / 2, "{} vs {} nodes", nodes(&two_pass), nodes(&plain));
    assert_eq!(two_pass.state, plain.state, "SAM adds no state");
    for rho in [0.0, -0.1, f32::NAN] {
        let err = training_graph_with(&model, &sp, &sam_options(rho, false)).unwrap_err().to_string();
        assert!(err.contains("rho"), "{err}");
    }
}

#[test]
fn lt_train_sam_trains_and_records_rho() {
    let (dir, data) = temp_dataset(&[24, 12, 8, 4], 4, 5);
    let run = dir.path().join("run");
    let o = train_tiny(&data, &run, 8, 1, &["--sam", "0.1", "--sam-adaptive"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = read_json(&run.join("run.json"));
    assert_eq!((json["config"]["sam"].as_f64(), json["config"]["sam_adaptive"].as_bool()), (Some(0.1), Some(true)));
    assert!(json["final"]["overall"].as_f64().is_some(), "{}", json["final"]);
    let bad = dir.path().join("bad");
    let o = train_tiny(&data, &bad, 8, 1, &["--sam-adaptive"]);
    assert!(!o.status.success(), "--sam-adaptive without --sam must be refused");
    let o = train_tiny(&data, &bad, 8, 1, &["--sam", "0"]);
    assert!(!o.status.success() && stderr(&o).contains("sam"), "{}", stderr(&o));
    assert!(!bad.exists(), "a refused run leaves nothing");
}
