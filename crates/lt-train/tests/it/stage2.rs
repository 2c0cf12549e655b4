//! Two-stage training and weight balancing: the head-only step over a frozen backbone
//! (`Trainable::Head`), MaxNorm on the head's class vectors, and `--stage2` runs.

use std::collections::HashMap;

use lt_graph::onnx::proto::ModelProto;
use lt_graph::train::{StateKind, StepOptions, Trainable, TrainingGraph, head_of, training_graph_with};

use crate::fixture::read_json;
use crate::graph_util::{Rng, ce, dense_block_net, grad_sgd, linear_net, spec};

type Outputs = HashMap<String, Vec<f32>>;

/// Runs `model` (a training step or an inference model) on the CPU with `inputs` plus
/// `state`, returning every float output by name.
fn run(model: &ModelProto, feeds: &[(&str, Vec<usize>, Vec<f32>)], labels: Option<&[i64]>) -> Outputs {
    let bytes = lt_graph::onnx::encode(model);
    let mut session = lt_train::device::Device::Cpu.session(&bytes, 1).expect("session");
    let mut inputs: Vec<(String, ort::session::SessionInputValue<'static>)> = Vec::new();
    for (name, dims, v) in feeds {
        inputs.push((name.to_string(), ort::value::Tensor::from_array((dims.clone(), v.clone())).unwrap().into()));
    }
    if let Some(l) = labels {
        inputs.push(("labels".into(), ort::value::Tensor::from_array(([l.len()], l.to_vec())).unwrap().into()));
    }
    let outputs = session.run(inputs).expect("runs");
    outputs
        .iter()
        .map(|(n, v)| (n.to_string(), v.try_extract_tensor::<f32>().expect("f32 output").1.to_vec()))
        .collect()
}

struct Batch {
    images: Vec<f32>,
    labels: Vec<i64>,
}

fn batch(tg: &TrainingGraph, b: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let [c, h, w] = tg.image_shape;
    Batch {
        images: rng.normals(b * c * h * w),
        labels: (0..b).map(|_| rng.below(tg.num_classes as u64) as i64).collect(),
    }
}

/// One step of `tg` from its initial state (or `state`) at learning rate `lr`.
fn step(tg: &TrainingGraph, bt: &Batch, lr: f32, state: Option<&HashMap<String, Vec<f32>>>) -> Outputs {
    let [c, h, w] = tg.image_shape;
    let b = bt.labels.len();
    let mut feeds = vec![
        ("images", vec![b, c, h, w], bt.images.clone()),
        ("class_weights", vec![tg.num_classes], vec![1.0; tg.num_classes]),
        ("lr", vec![], vec![lr]),
    ];
    for s in &tg.state {
        let v = state.and_then(|m| m.get(&s.name).cloned()).unwrap_or_else(|| s.init.clone());
        feeds.push((s.name.as_str(), s.dims.iter().map(|&d| d as usize).collect(), v));
    }
    run(&tg.model, &feeds, Some(&bt.labels))
}

fn head_only() -> StepOptions {
    StepOptions { trainable: Trainable::Head, ..StepOptions::default() }
}

#[test]
fn the_head_of_a_model_is_its_last_gemm_with_its_bias() {
    let head = head_of(&dense_block_net(5, 6, 1, true)).unwrap();
    assert_eq!((head.weight.as_str(), head.class_axis), ("fc.weight", 0));
    assert_eq!(head.params, ["fc.weight", "fc.bias"]);
    // A cosine head: the weight [c, k] is normalised before the MatMul (classes on axis 1).
    let cosine = lt_graph::models::Arch::named("resnet32", 10)
        .unwrap()
        .build(lt_graph::models::Head::Cosine { scale: 30.0 }, 1)
        .unwrap();
    let head = head_of(&cosine).unwrap();
    assert_eq!(head.class_axis, 1);
    assert_eq!(head.params, std::slice::from_ref(&head.weight));
}

/// With BatchNorm and ReLU in the backbone: the head-only step has only the head as state,
/// far fewer nodes, its logits are the inference model's (eval mode: running statistics), and
/// its head gradient matches a finite difference of its loss.
#[test]
fn the_head_only_step_freezes_the_backbone_in_eval_mode() {
    let model = dense_block_net(5, 6, 3, true);
    let sp = spec(8, 5, ce(), grad_sgd(), lt_graph::train::Lowering::Cpu);
    let full = training_graph_with(&model, &sp, &StepOptions::default()).unwrap();
    let head = training_graph_with(&model, &sp, &head_only()).unwrap();
    let names: Vec<(&str, StateKind)> = head.state.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    assert_eq!(
        names,
        [
            ("fc.weight", StateKind::Parameter),
            ("fc.bias", StateKind::Parameter),
            ("fc.weight.momentum", StateKind::Momentum),
            ("fc.bias.momentum", StateKind::Momentum),
        ]
    );
    let nodes = |tg: &TrainingGraph| tg.model.graph.as_ref().unwrap().node.len();
    assert!(nodes(&head) * 3 < nodes(&full), "head-only {} nodes vs full {}", nodes(&head), nodes(&full));
    // The default options build the same graph as training_graph.
    let plain = lt_graph::train::training_graph(&model, &sp).unwrap();
    assert_eq!(lt_graph::onnx::encode(&plain.model), lt_graph::onnx::encode(&full.model));

    let bt = batch(&head, 8, 11);
    let out = step(&head, &bt, 0.0, None);
    let [c, h, w] = head.image_shape;
    let inference = run(&model, &[("images", vec![8, c, h, w], bt.images.clone())], None);
    let max_diff = out["logits"].iter().zip(&inference["logits"]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max_diff < 1e-4, "head-only logits differ from the eval-mode model's by {max_diff}");

    // Gradient (momentum-free SGD: momentum.new = gradient) against a central difference.
    let base: HashMap<String, Vec<f32>> = head.state.iter().map(|s| (s.name.clone(), s.init.clone())).collect();
    let mut rng = Rng::new(5);
    for p in ["fc.weight", "fc.bias"] {
        let g = &out[&format!("{p}.momentum.new")];
        let dir = rng.normals(g.len());
        let analytic: f64 = g.iter().zip(&dir).map(|(&a, &d)| a as f64 * d as f64).sum();
        let h = 1e-2;
        let loss_at = |sign: f32| {
            let mut st = base.clone();
            st.get_mut(p).unwrap().iter_mut().zip(&dir).for_each(|(x, d)| *x += sign * h * d);
            step(&head, &bt, 0.0, Some(&st))["loss"][0] as f64
        };
        let fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h as f64);
        let rel = (fd - analytic).abs() / analytic.abs().max(fd.abs()).max(0.1);
        assert!(rel < 2e-3, "{p}: analytic {analytic} fd {fd}");
    }
}

/// Without BatchNorm or Dropout, eval mode changes nothing: the head-only step's head update
/// equals the full step's, with momentum and weight decay.
#[test]
fn the_head_only_update_equals_the_full_steps_head_update() {
    let model = linear_net(4, 2, 3, 7);
    let sgd = lt_graph::train::Sgd { momentum: 0.9, nesterov: true, weight_decay: 5e-4, decay_bn_and_bias: false };
    let sp = spec(6, 4, ce(), sgd, lt_graph::train::Lowering::Cpu);
    let full = training_graph_with(&model, &sp, &StepOptions::default()).unwrap();
    let head = training_graph_with(&model, &sp, &head_only()).unwrap();
    let bt = batch(&full, 6, 2);
    let (a, b) = (step(&full, &bt, 0.1, None), step(&head, &bt, 0.1, None));
    for out in ["fc.weight.new", "fc.bias.new", "fc.weight.momentum.new", "loss"] {
        let d = a[out].iter().zip(&b[out]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(d < 1e-6, "{out}: head-only and full steps differ by {d}");
    }
    assert_ne!(a["fc.weight.new"], head.state[0].init, "the step moved the head");
}

/// MaxNorm: the updated head weight is the plain update with each class row scaled by
/// min(1, R/‖w_c‖), computed here by hand; rows inside the ball are unchanged.
#[test]
fn max_norm_projects_each_class_vector_onto_the_ball() {
    let model = linear_net(4, 2, 3, 9);
    let sp = spec(6, 4, ce(), grad_sgd(), lt_graph::train::Lowering::Cpu);
    let plain = training_graph_with(&model, &sp, &StepOptions::default()).unwrap();
    let bt = batch(&plain, 6, 4);
    let w = step(&plain, &bt, 0.5, None)["fc.weight.new"].clone();
    let k = w.len() / 4;
    let mut norms: Vec<f32> = w.chunks(k).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
    let r = {
        norms.sort_by(f32::total_cmp);
        (norms[1] + norms[2]) / 2.0
    };
    let opts = StepOptions { max_norm: Some(r), ..StepOptions::default() };
    let constrained = training_graph_with(&model, &sp, &opts).unwrap();
    let out = step(&constrained, &bt, 0.5, None);
    let expect: Vec<f32> = w
        .chunks(k)
        .flat_map(|row| {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            let s = if n > r { r / n } else { 1.0 };
            row.iter().map(move |v| v * s).collect::<Vec<_>>()
        })
        .collect();
    let d = out["fc.weight.new"].iter().zip(&expect).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d < 1e-5, "MaxNorm differs from the hand projection by {d}");
    let clipped = out["fc.weight.new"].iter().zip(&w).filter(|(a, b)| a != b).count();
    assert!(clipped > 0 && clipped < w.len(), "R between the row norms clips some rows, not all");
    assert_eq!(out["fc.bias.new"], step(&plain, &bt, 0.5, None)["fc.bias.new"], "the bias is not constrained");
    let bad = StepOptions { max_norm: Some(0.0), ..StepOptions::default() };
    assert!(training_graph_with(&model, &sp, &bad).is_err());
}

fn initializers(path: &std::path::Path) -> HashMap<String, Vec<f32>> {
    let m = lt_graph::onnx::load(path).unwrap();
    m.graph.unwrap().initializer.iter().map(|t| (t.name.clone(), lt_graph::train::tensor_f32(t).unwrap())).collect()
}

/// `--stage2 crt` after one epoch: the backbone (BatchNorm running statistics included) is the
/// stage-1 run's, the head changed; the result is stage 2's last epoch. `tau-norm`: unit-norm
/// class rows (τ = 1), no bias. `lws`: every stage-1 initializer kept, only the added
/// per-class logit scales learned.
#[test]
fn stage2_crt_retrains_only_the_head_and_tau_norm_rescales_it() {
    use crate::fixture::{stderr, temp_dataset, train_tiny};
    let (dir, data) = temp_dataset(&[48, 32, 16, 8], 10, 7);
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = train_tiny(&data, &out, 16, 1, extra);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let run = read_json(&out.join("run.json"));
        (initializers(&out.join("model.onnx")), run)
    };
    let (stage1, _) = train("stage1", &[]);
    let (crt, run) = train("crt", &["--stage2", "crt", "--stage2-epochs", "2", "--stage2-lr", "0.05"]);
    assert_eq!(run["config"]["stage2"], "crt");
    assert_eq!(run["config"]["stage2_epochs"], 2);
    assert_eq!(run["final"]["epoch"], 3, "the result is stage 2's last epoch");
    let head = ["classifier.weight", "classifier.bias"];
    let head: Vec<&str> =
        head.into_iter().filter(|h| stage1.contains_key(*h)).chain(["fc.weight", "fc.bias"]).collect();
    let mut frozen = 0;
    for (name, v) in &stage1 {
        if head.contains(&name.as_str()) {
            assert_ne!(&crt[name], v, "{name}: the head was retrained");
        } else {
            assert_eq!(&crt[name], v, "{name}: the backbone stayed frozen");
            frozen += 1;
        }
    }
    assert!(frozen > 10, "backbone initializers compared: {frozen}");

    let (tau, run) = train("tau", &["--stage2", "tau-norm"]);
    assert_eq!(run["final"]["epoch"], 2);
    let hw = lt_graph::train::head_of(&lt_graph::onnx::load(&dir.path().join("tau/model.onnx")).unwrap()).unwrap();
    let w = &tau[&hw.weight];
    let rows = 4;
    for r in w.chunks(w.len() / rows) {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "a tau-normalised class vector has norm {n}");
    }
    for b in hw.params.iter().filter(|p| **p != hw.weight) {
        assert!(tau[b].iter().all(|&v| v == 0.0), "{b}: the bias is dropped");
    }

    let (lws, run) = train("lws", &["--stage2", "lws", "--stage2-epochs", "2", "--stage2-lr", "0.5"]);
    assert_eq!((run["config"]["stage2"].as_str(), run["final"]["epoch"].as_u64()), (Some("lws"), Some(3)));
    let scales = &lws[lt_graph::train::LOGIT_SCALES];
    assert_eq!(scales.len(), 4);
    assert!(scales.iter().any(|&f| (f - 1.0).abs() > 1e-4), "the scales were learned: {scales:?}");
    for (name, v) in &stage1 {
        assert_eq!(&lws[name], v, "{name}: LWS keeps the backbone and the head");
    }
}

/// LWS's step: the scales f [C] are the only state, the logits are the eval-mode model's
/// times f (ones at first: the same logits), and f's gradient matches a central difference.
#[test]
fn the_logit_scales_step_trains_only_the_scales() {
    use lt_graph::train::{LOGIT_SCALES, with_logit_scales};
    let model = dense_block_net(5, 6, 3, true);
    let scaled = with_logit_scales(&model).unwrap();
    assert!(with_logit_scales(&scaled).is_err(), "scales are added once");
    let sp = spec(8, 5, ce(), grad_sgd(), lt_graph::train::Lowering::Cpu);
    let opts = StepOptions { trainable: Trainable::LogitScales, ..StepOptions::default() };
    assert!(training_graph_with(&model, &sp, &opts).is_err(), "a model without scales is refused");
    let tg = training_graph_with(&scaled, &sp, &opts).unwrap();
    let names: Vec<&str> = tg.state.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [LOGIT_SCALES, "lws.scales.momentum"]);
    let bt = batch(&tg, 8, 13);
    let [c, h, w] = tg.image_shape;
    let inference = run(&model, &[("images", vec![8, c, h, w], bt.images.clone())], None);
    let mut f = HashMap::from([(LOGIT_SCALES.to_string(), vec![0.5, 1.0, 1.5, 2.0, 0.75])]);
    f.insert("lws.scales.momentum".into(), vec![0.0; 5]);
    let out = step(&tg, &bt, 0.0, Some(&f));
    for (i, (a, b)) in out["logits"].iter().zip(&inference["logits"]).enumerate() {
        let want = b * f[LOGIT_SCALES][i % 5];
        assert!((a - want).abs() < 1e-4, "logit {i}: {a} vs {want}");
    }
    let g = &out["lws.scales.momentum.new"];
    for (k, &analytic) in g.iter().enumerate() {
        let h = 1e-2f32;
        let loss_at = |sign: f32| {
            let mut st = f.clone();
            st.get_mut(LOGIT_SCALES).unwrap()[k] += sign * h;
            step(&tg, &bt, 0.0, Some(&st))["loss"][0] as f64
        };
        let fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h as f64);
        assert!((fd - analytic as f64).abs() < 2e-3 * fd.abs().max(0.1), "scale {k}: analytic {analytic} fd {fd}");
    }
}
