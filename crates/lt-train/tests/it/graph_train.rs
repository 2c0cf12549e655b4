//! The built-in models (DenseNets, ResNets) and whole training steps: determinism, parameter
//! counts, loss values against direct formulas, one SGD step by hand, BN running statistics,
//! training on a fixed batch, the evaluation model, the CUDA-placement rules and onnx.checker.

use std::collections::HashMap;

use lt_graph::models::{Arch, Head, build, densenet, parameter_count, preset};
use lt_graph::onnx::proto::ModelProto;
use lt_graph::train::{Loss, Lowering, Sgd, StateKind, TrainingGraphSpec, training_graph, with_weights};

use crate::graph_util::{Rng, Trainer, ce, every_loss, grad_sgd, linear_net, python, spec};

fn param_count(m: &ModelProto) -> usize {
    // Parameters = initializers that are not BN running statistics.
    m.graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .filter(|t| !t.name.ends_with("running_mean") && !t.name.ends_with("running_var"))
        .map(|t| t.dims.iter().product::<i64>() as usize)
        .sum()
}

#[test]
fn presets_have_the_published_sizes_and_are_deterministic() {
    let m100 = densenet(&preset("densenet-bc-100-k12", 10).unwrap(), 0).unwrap();
    let n = param_count(&m100);
    assert!((760_000..=780_000).contains(&n), "densenet-bc-100-k12 has {n} parameters, expected ~0.77M");
    let m161 = densenet(&preset("densenet161", 10).unwrap(), 0).unwrap();
    let n = param_count(&m161);
    assert!((26_400_000..=26_600_000).contains(&n), "densenet161 has {n} parameters, expected ~26.5M");
    let tiny = preset("densenet-tiny", 10).unwrap();
    let a = lt_graph::onnx::encode(&densenet(&tiny, 7).unwrap());
    let b = lt_graph::onnx::encode(&densenet(&tiny, 7).unwrap());
    let c = lt_graph::onnx::encode(&densenet(&tiny, 8).unwrap());
    assert_eq!(a, b, "same seed must give identical bytes");
    assert_ne!(a, c, "another seed must give other weights");
    let err = preset("resnet-9000", 10).unwrap_err().to_string();
    assert!(err.contains("densenet-tiny") && err.contains("resnet32") && err.contains("resnext50_32x4d"), "{err}");
    let err = preset("resnet50", 10).unwrap_err().to_string();
    assert!(err.contains("not a DenseNet"), "{err}");
}

#[test]
fn resnet_presets_have_the_published_parameter_counts_and_names() {
    // Trainable parameters as PyTorch counts them (BN running statistics excluded):
    // LDAM-DRW's resnet32 (CIFAR-10), torchvision's resnet18/50 and resnext50_32x4d.
    for (arch, classes, expected) in [
        ("resnet32", 10, 464_154),
        ("resnet18", 1000, 11_689_512),
        ("resnet50", 1000, 25_557_032),
        ("resnext50_32x4d", 1000, 25_028_904),
    ] {
        let m = build(arch, classes, Head::Linear, 0).unwrap();
        assert_eq!(parameter_count(&m), expected, "{arch}");
    }
    // Option B adds a 1x1 conv + BN per stage change: 16·32 + 2·32 + 32·64 + 2·64.
    let b = build("resnet32-b", 10, Head::Linear, 0).unwrap();
    assert_eq!(parameter_count(&b), 464_154 + 16 * 32 + 64 + 32 * 64 + 128);
    // The cosine head has a [64, classes] weight and no bias.
    let cos = build("resnet32", 10, Head::Cosine { scale: 30.0 }, 0).unwrap();
    assert_eq!(parameter_count(&cos), 464_154 - 10);
    let names = |m: &ModelProto| -> Vec<String> {
        m.graph.as_ref().unwrap().initializer.iter().map(|t| t.name.clone()).collect()
    };
    let r32 = names(&build("resnet32", 10, Head::Linear, 0).unwrap());
    for n in ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer3.4.bn2.bias", "linear.weight"] {
        assert!(r32.contains(&n.to_string()), "resnet32 lacks {n}");
    }
    assert!(!r32.iter().any(|n| n.contains("shortcut")), "option A has no shortcut parameters");
    assert!(names(&b).contains(&"layer2.0.shortcut.0.weight".to_string()));
    let r50 = names(&build("resnet50", 10, Head::Linear, 0).unwrap());
    for n in ["conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.conv3.weight", "layer4.2.bn3.weight", "fc.bias"]
    {
        assert!(r50.contains(&n.to_string()), "resnet50 lacks {n}");
    }
    let a = lt_graph::onnx::encode(&build("resnet20", 10, Head::Cosine { scale: 30.0 }, 3).unwrap());
    assert_eq!(a, lt_graph::onnx::encode(&build("resnet20", 10, Head::Cosine { scale: 30.0 }, 3).unwrap()));
}

#[test]
fn resnet_inference_models_run_at_their_image_sides() {
    // Every family runs in onnxruntime with its stem at its own image side, any batch.
    for (arch, side) in [("resnet20", 32usize), ("resnet20-b", 32), ("resnet10", 64), ("resnext50_32x4d", 32)] {
        let mut a = Arch::named(arch, 5).unwrap();
        a.set_image_size(side);
        let m = a.build(Head::Cosine { scale: 30.0 }, 1).unwrap();
        let mut s = lt_train::device::Device::Cpu.session(&lt_graph::onnx::encode(&m), 2).unwrap();
        let x = Rng::new(3).normals(2 * 3 * side * side);
        let out = s
            .run(ort::inputs!["images" => ort::value::Tensor::from_array(([2usize, 3, side, side], x)).unwrap()])
            .unwrap();
        let (shape, v) = out["logits"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), vec![2, 5], "{arch}");
        // Cosine logits lie in [-s, s].
        assert!(v.iter().all(|x| x.is_finite() && x.abs() <= 30.0 + 1e-3), "{arch}: {v:?}");
    }
}

#[test]
fn inference_model_runs_with_any_batch() {
    let m = densenet(&preset("densenet121", 7).unwrap(), 1).unwrap();
    let bytes = lt_graph::onnx::encode(&m);
    let mut s = lt_train::device::Device::Cpu.session(&bytes, 2).unwrap();
    for b in [1usize, 2] {
        let x = Rng::new(b as u64).normals(b * 3 * 224 * 224);
        let out =
            s.run(ort::inputs!["images" => ort::value::Tensor::from_array(([b, 3, 224, 224], x)).unwrap()]).unwrap();
        let (shape, v) = out["logits"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), vec![b as i64, 7]);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

/// The loss of `loss` for logits `z` [B,C], labels, class weights and counts, in f64.
fn direct_loss(loss: &Loss, z: &[f32], labels: &[i64], w: &[f32], counts: &[u64]) -> f64 {
    let c = w.len();
    let b = labels.len();
    let total: f64 = counts.iter().map(|&n| n as f64).sum();
    let mut num = 0.0;
    let mut den = 0.0;
    for n in 0..b {
        let y = labels[n] as usize;
        let mut row: Vec<f64> = z[n * c..(n + 1) * c].iter().map(|&v| v as f64).collect();
        match loss {
            Loss::Ldam { max_margin, scale } => {
                let raw: Vec<f64> = counts.iter().map(|&n| (n as f64).powf(-0.25)).collect();
                let mx = raw.iter().cloned().fold(0.0, f64::max);
                row[y] -= raw[y] / mx * *max_margin as f64;
                row.iter_mut().for_each(|v| *v *= *scale as f64);
            }
            Loss::BalancedSoftmax { tau } => {
                for (k, v) in row.iter_mut().enumerate() {
                    *v += *tau as f64 * (counts[k] as f64 / total).ln();
                }
            }
            Loss::Vs { gamma, tau } => {
                // Kini et al.'s reference code: z / Δ + ι, Δ_c = (n_max/n_c)^γ, ι_c = τ·log π_c.
                let n_max = counts.iter().copied().max().unwrap() as f64;
                for (k, v) in row.iter_mut().enumerate() {
                    let delta = (n_max / counts[k] as f64).powf(*gamma as f64);
                    *v = *v / delta + *tau as f64 * (counts[k] as f64 / total).ln();
                }
            }
            _ => {}
        }
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let logp: Vec<f64> = row.iter().map(|v| v - lse).collect();
        let wy = w[y] as f64;
        den += wy;
        num += match loss {
            Loss::CrossEntropy { label_smoothing: e } => {
                let e = *e as f64;
                (1.0 - e) * wy * -logp[y] + e / c as f64 * (0..c).map(|k| w[k] as f64 * -logp[k]).sum::<f64>()
            }
            Loss::Focal { gamma } => wy * -(1.0 - logp[y].exp()).powf(*gamma as f64) * logp[y],
            _ => wy * -logp[y],
        };
    }
    num / den
}

#[test]
fn weighted_loss_values_equal_the_direct_formulas() {
    for (i, loss) in every_loss().into_iter().enumerate() {
        let sp = spec(16, 5, loss.clone(), grad_sgd(), Lowering::Cpu);
        let mut t = Trainer::new(&linear_net(5, 3, 2, 60 + i as u64), &sp, 70 + i as u64);
        let st = t.state.clone();
        let out = t.run_with(&st, 0.0);
        let want = direct_loss(&loss, &out["logits"], &t.labels, &t.class_weights, &sp.class_counts);
        let got = out["loss"][0] as f64;
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{loss:?}: graph {got} vs direct {want}");
        // All-ones weights give the plain mean of the per-example losses.
        t.class_weights = vec![1.0; 5];
        let out = t.run_with(&st, 0.0);
        let want = direct_loss(&loss, &out["logits"], &t.labels, &t.class_weights, &sp.class_counts);
        assert!((out["loss"][0] as f64 - want).abs() <= 1e-5 * want.abs().max(1.0), "{loss:?} unweighted");
    }
}

#[test]
fn two_sgd_steps_equal_a_hand_computation() {
    // logits = x·Wᵀ + b with CE: dW = dzᵀ·x, db = Σ dz, dz = w_y·(softmax − onehot)/Σ w_y.
    for nesterov in [false, true] {
        let sgd = Sgd { momentum: 0.9, nesterov, weight_decay: 0.01, decay_bn_and_bias: false };
        let (b, c, f) = (6usize, 3usize, 4usize);
        let sp = spec(b, c, ce(), sgd.clone(), Lowering::Cpu);
        let mut t = Trainer::new(&linear_net(c as i64, 1, 2, 90), &sp, 91);
        let lr = 0.3f64;
        let mut w: Vec<f64> = t.state["fc.weight"].iter().map(|&v| v as f64).collect();
        let mut bias: Vec<f64> = t.state["fc.bias"].iter().map(|&v| v as f64).collect();
        let (mut vw, mut vb) = (vec![0.0; c * f], vec![0.0; c]);
        for _ in 0..2 {
            t.step(lr as f32);
            let x: Vec<f64> = t.images.iter().map(|&v| v as f64).collect();
            let mut dw = vec![0.0; c * f];
            let mut db = vec![0.0; c];
            let wsum: f64 = t.labels.iter().map(|&y| t.class_weights[y as usize] as f64).sum();
            for n in 0..b {
                let z: Vec<f64> =
                    (0..c).map(|k| bias[k] + (0..f).map(|j| w[k * f + j] * x[n * f + j]).sum::<f64>()).collect();
                let m = z.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                let y = t.labels[n] as usize;
                let wy = t.class_weights[y] as f64 / wsum;
                for k in 0..c {
                    let dz = wy * (e[k] / s - if k == y { 1.0 } else { 0.0 });
                    db[k] += dz;
                    for j in 0..f {
                        dw[k * f + j] += dz * x[n * f + j];
                    }
                }
            }
            for (p, v, g, decay) in [(&mut w, &mut vw, &dw, true), (&mut bias, &mut vb, &db, false)] {
                for i in 0..p.len() {
                    let gp = g[i] + if decay { sgd.weight_decay as f64 * p[i] } else { 0.0 };
                    v[i] = sgd.momentum as f64 * v[i] + gp;
                    let upd = if nesterov { gp + sgd.momentum as f64 * v[i] } else { v[i] };
                    p[i] -= lr * upd;
                }
            }
        }
        for (name, want) in
            [("fc.weight", &w), ("fc.bias", &bias), ("fc.weight.momentum", &vw), ("fc.bias.momentum", &vb)]
        {
            let got = &t.state[name];
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((*g as f64 - w).abs() < 1e-5 * w.abs().max(1.0), "nesterov={nesterov} {name}: {g} vs {w}");
            }
        }
    }
}

fn one_bn_model(final_op: &str) -> ModelProto {
    use lt_graph::onnx::proto::DataType;
    use lt_graph::onnx::{Dim, GraphBuilder, Tensor};
    let mut g = GraphBuilder::new("bn");
    let x = g
        .input_dims("images", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(3), Dim::Fixed(4), Dim::Fixed(4)])
        .unwrap();
    let gamma = g.initializer("bn.weight", &Tensor::f32(&[3], vec![1.0, 2.0, 0.5])).unwrap();
    let beta = g.initializer("bn.bias", &Tensor::f32(&[3], vec![0.0, 0.1, -0.1])).unwrap();
    let rm = g.initializer("bn.running_mean", &Tensor::f32(&[3], vec![0.5, -0.5, 1.0])).unwrap();
    let rv = g.initializer("bn.running_var", &Tensor::f32(&[3], vec![2.0, 1.0, 0.5])).unwrap();
    let h = g.op("BatchNormalization", &[&x, &gamma, &beta, &rm, &rv], &[]).unwrap();
    let gp = g.op("GlobalAveragePool", &[&h], &[]).unwrap();
    let fl = g.op("Flatten", &[&gp], &[]).unwrap();
    let logits = if final_op == "Flatten" { fl } else { g.op(final_op, &[&fl, &fl], &[]).unwrap() };
    g.output_dims(&logits, "logits", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(3)]).unwrap();
    g.finish()
}

#[test]
fn an_op_without_a_backward_rule_is_an_error_naming_op_and_node() {
    let sp = spec(5, 3, ce(), grad_sgd(), Lowering::Cpu);
    let err = training_graph(&one_bn_model("Pow"), &sp).unwrap_err().to_string();
    assert!(err.contains("Pow") && err.contains("pow_node"), "{err}");
}

/// Mean and unbiased variance, in f64, of channel `ch` of the one-BN fixture's batch
/// (5 images of 3 channels x 16 values).
fn channel_stats(images: &[f32], ch: usize) -> (f64, f64) {
    let vals: Vec<f64> =
        (0..5).flat_map(|n| (0..16).map(move |i| (n, i))).map(|(n, i)| images[(n * 3 + ch) * 16 + i] as f64).collect();
    let m = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / m;
    (mean, vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0))
}

/// BatchNorm over Concat(Concat(x, x), x): every channel's batch statistics are its own, as
/// the builder assembles them from the parts' (each image channel three times, in order).
#[test]
fn batchnorm_over_nested_concatenations_uses_each_channels_statistics() {
    use lt_graph::onnx::proto::DataType;
    use lt_graph::onnx::{Attr, Dim, GraphBuilder, Tensor};
    let mut g = GraphBuilder::new("bn-concat");
    let n = Dim::Param("N".into());
    let x = g.input_dims("images", DataType::Float, &[n.clone(), Dim::Fixed(3), Dim::Fixed(4), Dim::Fixed(4)]).unwrap();
    let axis = [("axis", Attr::Int(1))];
    let inner = g.op("Concat", &[&x, &x], &axis).unwrap();
    let outer = g.op("Concat", &[&inner, &x], &axis).unwrap();
    let gamma = g.initializer("bn.weight", &Tensor::f32(&[9], vec![1.0; 9])).unwrap();
    let beta = g.initializer("bn.bias", &Tensor::f32(&[9], vec![0.0; 9])).unwrap();
    let rm = g.initializer("bn.running_mean", &Tensor::f32(&[9], vec![0.0; 9])).unwrap();
    let rv = g.initializer("bn.running_var", &Tensor::f32(&[9], vec![1.0; 9])).unwrap();
    let h = g.op("BatchNormalization", &[&outer, &gamma, &beta, &rm, &rv], &[]).unwrap();
    let gp = g.op("GlobalAveragePool", &[&h], &[]).unwrap();
    let logits = g.op("Flatten", &[&gp], &[]).unwrap();
    g.output_dims(&logits, "logits", DataType::Float, &[n, Dim::Fixed(9)]).unwrap();
    let model = g.finish();
    for mode in [Lowering::Cpu, Lowering::Cuda] {
        let mut t = Trainer::new(&model, &spec(5, 9, ce(), grad_sgd(), mode), 17);
        for (i, v) in t.images.iter_mut().enumerate() {
            *v += (i % 48 / 16) as f32 * 3.0; // channel means 0, 3, 6: a swap would show
        }
        let st = t.state.clone();
        let out = t.run_with(&st, 0.1);
        let (means, vars) = (&out["bn.running_mean.new"], &out["bn.running_var.new"]);
        assert_eq!((means.len(), vars.len()), (9, 9));
        for (ch, (&got_m, &got_v)) in means.iter().zip(vars).enumerate() {
            let (mean, var_unbiased) = channel_stats(&t.images, ch % 3);
            let (got_m, got_v) = (got_m as f64, got_v as f64);
            assert!((got_m - 0.1 * mean).abs() < 1e-5, "{mode:?} channel {ch}: running mean {got_m} vs {}", 0.1 * mean);
            let want_v = 0.9 + 0.1 * var_unbiased;
            assert!((got_v - want_v).abs() < 1e-5, "{mode:?} channel {ch}: running var {got_v} vs {want_v}");
        }
    }
}

#[test]
fn batchnorm_running_statistics_follow_pytorch() {
    let sp = spec(5, 3, ce(), grad_sgd(), Lowering::Cpu);
    let model = one_bn_model("Flatten");
    let mut t = Trainer::new(&model, &sp, 13);
    let st = t.state.clone();
    let out = t.run_with(&st, 0.1);
    for ch in 0..3 {
        let (mean, var_unbiased) = channel_stats(&t.images, ch);
        let want_m = 0.9 * st["bn.running_mean"][ch] as f64 + 0.1 * mean;
        let want_v = 0.9 * st["bn.running_var"][ch] as f64 + 0.1 * var_unbiased;
        let got_m = out["bn.running_mean.new"][ch] as f64;
        let got_v = out["bn.running_var.new"][ch] as f64;
        assert!((got_m - want_m).abs() < 1e-5, "channel {ch}: running mean {got_m} vs {want_m}");
        assert!((got_v - want_v).abs() < 1e-5, "channel {ch}: running var {got_v} vs {want_v}");
    }

    // A channel whose mean is large against its spread (mean 100, std 0.01): E[x²] − μ² would
    // cancel to noise (or below zero, and evaluation to NaN); the batch variance must hold.
    for v in t.images.iter_mut() {
        *v = 100.0 + 0.01 * *v;
    }
    let mut st = t.state.clone();
    st.insert("bn.running_var".into(), vec![0.0; 3]);
    let out = t.run_with(&st, 0.1);
    assert!(out["loss"][0].is_finite());
    for (ch, &got_v) in out["bn.running_var.new"].iter().enumerate() {
        let want_v = 0.1 * channel_stats(&t.images, ch).1;
        let got_v = got_v as f64;
        assert!((got_v - want_v).abs() < 0.02 * want_v, "channel {ch}: running var {got_v:e} vs {want_v:e}");
    }
}

fn tiny_spec(batch: usize, lowering: Lowering) -> TrainingGraphSpec {
    TrainingGraphSpec {
        batch_size: batch,
        loss: ce(),
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
        class_counts: vec![50, 20, 10, 5],
        lowering,
        mixed_labels: false,
    }
}

#[test]
fn densenet_tiny_learns_a_fixed_batch_and_exports_an_eval_model() {
    let cfg = preset("densenet-tiny", 4).unwrap();
    let inference = densenet(&cfg, 3).unwrap();
    let mut t = Trainer::new(&inference, &tiny_spec(16, Lowering::Cpu), 4);
    let losses: Vec<f32> = (0..12).map(|_| t.step(0.1)).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[11] < 0.5 * losses[0], "loss did not decrease on a fixed batch: {losses:?}");
    // With lr = 0 the weights stay and the running statistics converge to the batch's.
    for _ in 0..40 {
        t.step(0.0);
    }

    // The evaluation model with the trained weights: names preserved, BN in inference form.
    let values: HashMap<String, Vec<f32>> =
        t.tg.state
            .iter()
            .filter(|s| s.kind != StateKind::Momentum)
            .map(|s| (s.name.clone(), t.state[&s.name].clone()))
            .collect();
    let eval = with_weights(&inference, &values).unwrap();
    let bytes = lt_graph::onnx::encode(&eval);
    let mut s = lt_train::device::Device::Cpu.session(&bytes, 2).unwrap();
    let out = s
        .run(
            ort::inputs!["images" => ort::value::Tensor::from_array(([16usize, 3, 32, 32], t.images.clone())).unwrap()],
        )
        .unwrap();
    let (_, logits) = out["logits"].try_extract_tensor::<f32>().unwrap();
    let correct = (0..16)
        .filter(|&n| {
            let row = &logits[n * 4..n * 4 + 4];
            let arg = (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            arg as i64 == t.labels[n]
        })
        .count();
    assert!(correct >= 12, "the eval model fits only {correct}/16 of the memorised batch");
    let mut bad = values.clone();
    bad.insert("features.conv0.weight.momentum".into(), vec![0.0]);
    assert!(with_weights(&inference, &bad).is_err());
}

#[test]
fn both_formulations_give_the_same_step_on_densenet_tiny() {
    let inference = densenet(&preset("densenet-tiny", 4).unwrap(), 5).unwrap();
    let mut a = Trainer::new(&inference, &tiny_spec(4, Lowering::Cpu), 6);
    let mut b = Trainer::new(&inference, &tiny_spec(4, Lowering::Cuda), 6);
    let st = a.state.clone();
    let (oa, ob) = (a.run_with(&st, 0.1), b.run_with(&st, 0.1));
    for s in &a.tg.state {
        let (x, y) = (&oa[&s.output], &ob[&s.output]);
        let scale = x.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= 1e-4 * scale, "{}: formulations differ by {diff} (scale {scale})", s.output);
    }
}

/// Asserts the rules that keep every node on onnxruntime's CUDA provider.
fn assert_cuda_friendly(m: &ModelProto) {
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!((m.opset_import[0].domain.as_str(), m.opset_import[0].version), ("", 17));
    for n in &m.graph.as_ref().unwrap().node {
        assert!(n.domain.is_empty(), "node {} has domain {}", n.name, n.domain);
        assert!(!["Shape", "Size", "NonZero", "Loop", "If"].contains(&n.op_type.as_str()), "{} {}", n.op_type, n.name);
        if n.op_type == "BatchNormalization" {
            // Stock CUDA providers reject training_mode=1; the inference form (fed with the
            // batch statistics) is a plain cuDNN kernel.
            let training = n.attribute.iter().find(|a| a.name == "training_mode").is_some_and(|a| a.i != 0);
            assert!(!training && n.output.len() == 1, "training-mode BatchNormalization {}", n.name);
        }
        if n.op_type == "ConvTranspose" {
            let pads = n.attribute.iter().find(|a| a.name == "pads").map(|a| a.ints.clone()).unwrap_or_default();
            assert!(pads.len() == 4 && pads[0] == pads[2] && pads[1] == pads[3], "asymmetric ConvTranspose {}", n.name);
            assert!(n.attribute.iter().all(|a| a.name != "auto_pad"), "auto_pad on {}", n.name);
        }
    }
}

#[test]
fn training_graphs_follow_the_cuda_placement_rules_and_pass_onnx_checker() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let cosine = Head::Cosine { scale: 30.0 };
    for (arch, head, mode) in [
        ("densenet121", Head::Linear, Lowering::Cuda),
        ("densenet-tiny", Head::Linear, Lowering::Cpu),
        ("resnet32", cosine, Lowering::Cuda),
        ("resnet32-b", Head::Linear, Lowering::Cpu),
        ("resnext50_32x4d", cosine, Lowering::Cuda),
    ] {
        let inference = build(arch, 5, head, 0).unwrap();
        let mut sp = tiny_spec(2, mode);
        sp.class_counts = vec![9, 7, 5, 3, 1];
        let tg = training_graph(&inference, &sp).unwrap();
        assert_cuda_friendly(&tg.model);
        let train = dir.path().join(format!("{arch}-train.onnx"));
        let eval = dir.path().join(format!("{arch}-eval.onnx"));
        lt_graph::onnx::save(&tg.model, &train).unwrap();
        lt_graph::onnx::save(&inference, &eval).unwrap();
        for f in [&train, &eval] {
            let out = std::process::Command::new(&py)
                .args(["-c", "import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True); print('ok')"])
                .arg(f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "onnx.checker rejected {}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn dropout_trains_in_the_training_graph_and_is_identity_in_the_eval_graph() {
    let mut cfg = preset("densenet-tiny", 4).unwrap();
    cfg.dropout = 0.2;
    let inference = densenet(&cfg, 2).unwrap();
    let tg = training_graph(&inference, &tiny_spec(4, Lowering::Cpu)).unwrap();
    let drops = tg.model.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == "Dropout").count();
    assert_eq!(drops, 6, "one training-mode Dropout per dense layer");
    let mut t = Trainer::new(&inference, &tiny_spec(4, Lowering::Cpu), 3);
    let st = t.state.clone();
    // Random masks: two runs on the same inputs give different losses; both finite.
    let (a, b) = (t.run_with(&st, 0.1)["loss"][0], t.run_with(&st, 0.1)["loss"][0]);
    assert!(a.is_finite() && b.is_finite() && a != b, "{a} {b}");
    // The eval graph is deterministic.
    let bytes = lt_graph::onnx::encode(&inference);
    let mut s = lt_train::device::Device::Cpu.session(&bytes, 2).unwrap();
    let run = |s: &mut ort::session::Session| {
        let x = ort::value::Tensor::from_array(([4usize, 3, 32, 32], t.images.clone())).unwrap();
        s.run(ort::inputs!["images" => x]).unwrap()["logits"].try_extract_tensor::<f32>().unwrap().1.to_vec()
    };
    assert_eq!(run(&mut s), run(&mut s));
}
