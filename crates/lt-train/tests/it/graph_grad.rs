//! Every backward rule of the training graph against central finite differences, through
//! onnxruntime CPU (ops in small compositions, both conv-gradient formulations, all losses).
//! The gradient is read from `<p>.momentum.new` of a momentum-free SGD step; the finite
//! difference is taken along a random direction per parameter tensor. ReLU kinks make float32
//! differences noisy, so smooth compositions get a tight tolerance and the ReLU ones a small
//! size, a small step and a looser one.

use std::collections::BTreeSet;

use lt_graph::train::{Loss, Lowering, supported_ops};

use lt_graph::models::{Head, Shortcut};

use crate::graph_util::{
    Trainer, ce, clip_expand_net, dense_block_net, every_loss, grad_sgd, linear_net, residual_ops_net, shape_ops_net,
    spec, stem_net, tiny_cifar_resnet,
};

/// Every op of lt-graph's rule table appears in a model the tests below check against finite
/// differences: a new rule needs a model here (and a test running it).
#[test]
fn every_rule_of_the_table_has_a_finite_difference_check() {
    let checked = [
        dense_block_net(3, 4, 0, true),
        stem_net(4, 12, 0, true),
        linear_net(6, 2, 3, 0),
        shape_ops_net(4, 0),
        residual_ops_net(3, 0),
        clip_expand_net(3, 0),
    ];
    let covered: BTreeSet<&str> =
        checked.iter().flat_map(|m| m.graph.as_ref().unwrap().node.iter()).map(|n| n.op_type.as_str()).collect();
    let missing: Vec<&str> = supported_ops().into_iter().filter(|op| !covered.contains(op)).collect();
    assert!(missing.is_empty(), "rules without a finite-difference check in graph_grad.rs: {missing:?}");
}

#[test]
fn dense_block_gradients_both_formulations() {
    // conv 3x3 and 1x1, BN (training mode), concat, avgpool 2x2, GAP, Gemm.
    let smooth = Fd { batch: 4, classes: 5, h_scale: 3e-3, tolerance: 3e-3 };
    check_on_both_lowerings("dense block", 1, smooth, |seed| dense_block_net(5, 8, seed, false));
}

#[test]
fn dense_block_with_relu_gradients() {
    let kinked = Fd { batch: 3, classes: 3, h_scale: 1e-3, tolerance: 5e-2 };
    check_on_both_lowerings("dense block with ReLU", 3, kinked, |seed| dense_block_net(3, 4, seed, true));
}

#[test]
fn imagenet_stem_gradients_maxpool_strided_conv_reducemean_matmul() {
    // conv 7x7/2 (no input grad), BN, maxpool 3x3/2 (overlapping windows), conv 3x3/2 with
    // bias (input grad by ConvTranspose with output_padding), ReduceMean, MatMul, Add.
    // MaxPool's argmax switches are kinks like ReLU's: small sizes, small steps.
    for relu in [false, true] {
        let kinked = Fd { batch: 2, classes: 4, h_scale: 1e-3, tolerance: 5e-2 };
        check_on_both_lowerings(&format!("stem (relu: {relu})"), 7, kinked, |seed| stem_net(4, 12, seed, relu));
    }
}

#[test]
fn every_loss_gradient_matches_finite_differences() {
    for (i, loss) in every_loss().into_iter().enumerate() {
        let m = linear_net(6, 2, 3, 30 + i as u64);
        let mut t = Trainer::new(&m, &spec(8, 6, loss.clone(), grad_sgd(), Lowering::Cpu), 40 + i as u64);
        t.h_scale = loss_h_scale(&loss);
        t.check_gradients(&format!("{loss:?}"), 50 + i as u64, 3e-3);
    }
}

/// The finite-difference step scale for `loss`'s gradient check: LDAM multiplies the logits
/// by 30, so a smaller step keeps the difference quadratic.
fn loss_h_scale(loss: &Loss) -> f64 {
    if matches!(loss, Loss::Ldam { .. }) { 3e-4 } else { 3e-3 }
}

/// Mixed batches (mixup / CutMix): every loss with a second label set and λ = 0.3 against
/// finite differences, and the loss equal to λ·L(labels) + (1−λ)·L(labels_mix), each term a
/// weighted mean with its own normaliser (the reference code's `mixup_criterion` over a
/// weighted `CrossEntropyLoss`).
#[test]
fn every_mixed_loss_gradient_matches_finite_differences_and_mixes_the_two_losses() {
    for (i, loss) in every_loss().into_iter().enumerate() {
        let m = linear_net(6, 2, 3, 130 + i as u64);
        let mut mixed_spec = spec(8, 6, loss.clone(), grad_sgd(), Lowering::Cpu);
        mixed_spec.mixed_labels = true;
        let mut t = Trainer::new(&m, &mixed_spec, 140 + i as u64);
        let (labels_mix, lambda) = t.mix.clone().unwrap();
        assert_ne!(labels_mix, t.labels, "the partner labels must differ from the labels");
        let mut plain = Trainer::new(&m, &spec(8, 6, loss.clone(), grad_sgd(), Lowering::Cpu), 140 + i as u64);
        let st = t.state.clone();
        let mixed_loss = t.run_with(&st, 0.0)["loss"][0] as f64;
        let own = plain.run_with(&st, 0.0)["loss"][0] as f64;
        plain.labels = labels_mix;
        let other = plain.run_with(&st, 0.0)["loss"][0] as f64;
        let want = lambda as f64 * own + (1.0 - lambda as f64) * other;
        assert!(
            (mixed_loss - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{loss:?}: mixed loss {mixed_loss}, λ·L_a + (1−λ)·L_b = {want}"
        );
        t.h_scale = loss_h_scale(&loss);
        t.check_gradients(&format!("mixed {loss:?}"), 150 + i as u64, 3e-3);
    }
}

#[test]
fn shape_ops_and_dropout_gradients() {
    // Identity, Constant, Reshape, MatMul, Add, Dropout (its masks fixed by a seed and a
    // fresh session per run), ReduceMean, Squeeze, Gemm with alpha/beta/transA.
    for (mode, seed) in [(Lowering::Cpu, 11), (Lowering::Cuda, 12)] {
        let m = shape_ops_net(4, seed);
        let mut t = Trainer::new(&m, &spec(4, 4, ce(), grad_sgd(), mode), seed + 10);
        t.fix_dropout_masks(5);
        let st = t.state.clone();
        let (a, b) = (t.run_with(&st, 0.0)["loss"][0], t.run_with(&st, 0.0)["loss"][0]);
        assert_eq!(a, b, "the dropout masks must not change between runs");
        t.h_scale = 3e-3;
        t.check_gradients(&format!("shape ops and dropout, {mode:?}"), seed + 20, 3e-3);
    }
}

#[test]
fn residual_grouped_conv_slice_pad_and_cosine_head_gradients() {
    // Grouped convs (dX by the group-transposed flipped kernel on the CPU, by a grouped
    // ConvTranspose for the strided one and on CUDA; dW by the grouped batch-transposed
    // Conv), strided Slice with a crop, Pad, residual Add, Max/Mul of two activations and
    // the cosine head (ReduceL2, Max with eps, Div, MatMul, Mul by the scale).
    check_on_both_lowerings("residual ops", 21, Fd::KINKED_3, |seed| residual_ops_net(3, seed));
}

#[test]
fn clip_and_expand_gradients_in_an_exported_normed_linear() {
    // Clip with both bounds (its mask: some features are clipped) and with a min only, Expand
    // of a norm to its operand's shape (dY summed back), as the TorchScript exporter writes
    // F.normalize.
    check_on_both_lowerings("clip and expand", 31, Fd { batch: 4, ..Fd::KINKED_3 }, |seed| clip_expand_net(3, seed));
}

/// A finite-difference check's batch, class count, step scale and tolerance.
#[derive(Clone, Copy)]
struct Fd {
    batch: usize,
    classes: usize,
    h_scale: f64,
    tolerance: f64,
}

impl Fd {
    /// 3 classes, batch 3, steps of 1e-3, tolerance 1e-2: for compositions with ReLU kinks.
    const KINKED_3: Fd = Fd { batch: 3, classes: 3, h_scale: 1e-3, tolerance: 1e-2 };
}

/// The gradient check of `net(seed)` under `fd`, CPU lowering with seed `first`, CUDA
/// lowering with `first + 1`.
fn check_on_both_lowerings(what: &str, first: u64, fd: Fd, net: impl Fn(u64) -> lt_graph::onnx::proto::ModelProto) {
    for (mode, seed) in [(Lowering::Cpu, first), (Lowering::Cuda, first + 1)] {
        let mut t = Trainer::new(&net(seed), &spec(fd.batch, fd.classes, ce(), grad_sgd(), mode), seed + 10);
        t.h_scale = fd.h_scale;
        t.check_gradients(&format!("{what}, {mode:?}"), seed + 20, fd.tolerance);
    }
}

#[test]
fn tiny_cifar_resnet_gradients_both_shortcuts_and_heads() {
    // ResNet-8 of width 4 end to end, its ReLUs made Identities (smooth): stem, three stages
    // with option-A or option-B shortcuts, BN, residual Adds, GAP and a cosine or linear head.
    let smooth = Fd { batch: 4, classes: 3, h_scale: 3e-3, tolerance: 1e-2 };
    for (shortcut, head, first) in [(Shortcut::A, Head::Cosine { scale: 5.0 }, 31), (Shortcut::B, Head::Linear, 33)] {
        let what = format!("resnet-8 {shortcut:?} {head:?}");
        check_on_both_lowerings(&what, first, smooth, |seed| tiny_cifar_resnet(3, shortcut, head, seed, false));
    }
}

#[test]
fn tiny_cifar_resnet_with_relu_gives_the_same_gradients_on_both_lowerings() {
    // With its ReLUs, the ResNet-8's gradients (momentum-free SGD: `.momentum.new` is the
    // gradient) agree between the CPU and CUDA formulations of every rule.
    for (shortcut, head) in [(Shortcut::A, Head::Cosine { scale: 5.0 }), (Shortcut::B, Head::Linear)] {
        let m = tiny_cifar_resnet(3, shortcut, head, 41, true);
        let mut cpu = Trainer::new(&m, &spec(4, 3, ce(), grad_sgd(), Lowering::Cpu), 42);
        let mut cuda = Trainer::new(&m, &spec(4, 3, ce(), grad_sgd(), Lowering::Cuda), 42);
        let st = cpu.state.clone();
        let (a, b) = (cpu.run_with(&st, 0.0), cuda.run_with(&st, 0.0));
        for p in cpu.params() {
            let (x, y) = (&a[&format!("{p}.momentum.new")], &b[&format!("{p}.momentum.new")]);
            let scale = x.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(diff <= 1e-4 * scale, "{shortcut:?} {p}: lowerings differ by {diff} (scale {scale})");
        }
    }
}
