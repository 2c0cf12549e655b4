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
    Trainer, ce, clip_expand_net, dense_block_net, grad_sgd, linear_net, residual_ops_net, shape_ops_net, spec,
    stem_net, tiny_cifar_resnet,
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
    for (mode, seed) in [(Lowering::Cpu, 1), (Lowering::Cuda, 2)] {
        let m = dense_block_net(5, 8, seed, false);
        let mut t = Trainer::new(&m, &spec(4, 5, ce(), grad_sgd(), mode), seed + 10);
        t.h_scale = 3e-3;
        t.check_gradients(&format!("dense block, {mode:?}"), seed + 20, 3e-3);
    }
}

#[test]
fn dense_block_with_relu_gradients() {
    for (mode, seed) in [(Lowering::Cpu, 3), (Lowering::Cuda, 4)] {
        let m = dense_block_net(3, 4, seed, true);
        let mut t = Trainer::new(&m, &spec(3, 3, ce(), grad_sgd(), mode), seed + 10);
        t.h_scale = 1e-3;
        t.check_gradients(&format!("dense block with ReLU, {mode:?}"), seed + 20, 5e-2);
    }
}

#[test]
fn imagenet_stem_gradients_maxpool_strided_conv_reducemean_matmul() {
    // conv 7x7/2 (no input grad), BN, maxpool 3x3/2 (overlapping windows), conv 3x3/2 with
    // bias (input grad by ConvTranspose with output_padding), ReduceMean, MatMul, Add.
    // MaxPool's argmax switches are kinks like ReLU's: small sizes, small steps.
    for (mode, seed) in [(Lowering::Cpu, 7), (Lowering::Cuda, 8)] {
        for relu in [false, true] {
            let m = stem_net(4, 12, seed, relu);
            let mut t = Trainer::new(&m, &spec(2, 4, ce(), grad_sgd(), mode), seed + 10);
            t.h_scale = 1e-3;
            t.check_gradients(&format!("stem (relu: {relu}), {mode:?}"), seed + 20, 5e-2);
        }
    }
}

#[test]
fn every_loss_gradient_matches_finite_differences() {
    let losses = [
        Loss::CrossEntropy { label_smoothing: 0.0 },
        Loss::CrossEntropy { label_smoothing: 0.1 },
        Loss::Focal { gamma: 2.0 },
        Loss::Focal { gamma: 0.5 },
        Loss::Ldam { max_margin: 0.5, scale: 30.0 },
        Loss::BalancedSoftmax { tau: 1.0 },
        Loss::Vs { gamma: 0.3, tau: 1.0 },
        Loss::Vs { gamma: 1.0, tau: 0.5 },
    ];
    for (i, loss) in losses.into_iter().enumerate() {
        let m = linear_net(6, 2, 3, 30 + i as u64);
        let mut t = Trainer::new(&m, &spec(8, 6, loss.clone(), grad_sgd(), Lowering::Cpu), 40 + i as u64);
        // LDAM multiplies the logits by 30: a smaller step keeps the difference quadratic.
        t.h_scale = if matches!(loss, Loss::Ldam { .. }) { 3e-4 } else { 3e-3 };
        t.check_gradients(&format!("{loss:?}"), 50 + i as u64, 3e-3);
    }
}

/// Mixed batches (mixup / CutMix): every loss with a second label set and λ = 0.3 against
/// finite differences, and the loss equal to λ·L(labels) + (1−λ)·L(labels_mix), each term a
/// weighted mean with its own normaliser (the reference code's `mixup_criterion` over a
/// weighted `CrossEntropyLoss`).
#[test]
fn every_mixed_loss_gradient_matches_finite_differences_and_mixes_the_two_losses() {
    let losses = [
        Loss::CrossEntropy { label_smoothing: 0.0 },
        Loss::CrossEntropy { label_smoothing: 0.1 },
        Loss::Focal { gamma: 2.0 },
        Loss::Ldam { max_margin: 0.5, scale: 30.0 },
        Loss::BalancedSoftmax { tau: 1.0 },
        Loss::Vs { gamma: 0.3, tau: 1.0 },
    ];
    for (i, loss) in losses.into_iter().enumerate() {
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
        t.h_scale = if matches!(loss, Loss::Ldam { .. }) { 3e-4 } else { 3e-3 };
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
    check_on_both_lowerings("residual ops", 21, 3, |seed| residual_ops_net(3, seed));
}

#[test]
fn clip_and_expand_gradients_in_an_exported_normed_linear() {
    // Clip with both bounds (its mask: some features are clipped) and with a min only, Expand
    // of a norm to its operand's shape (dY summed back), as the TorchScript exporter writes
    // F.normalize.
    check_on_both_lowerings("clip and expand", 31, 4, |seed| clip_expand_net(3, seed));
}

/// The gradient check of the 3-class `net(seed)` on a batch of `batch`, CPU lowering with
/// seed `first`, CUDA lowering with `first + 1` (steps of 1e-3, tolerance 1e-2: ReLU kinks).
fn check_on_both_lowerings(
    what: &str,
    first: u64,
    batch: usize,
    net: impl Fn(u64) -> lt_graph::onnx::proto::ModelProto,
) {
    for (mode, seed) in [(Lowering::Cpu, first), (Lowering::Cuda, first + 1)] {
        let mut t = Trainer::new(&net(seed), &spec(batch, 3, ce(), grad_sgd(), mode), seed + 10);
        t.h_scale = 1e-3;
        t.check_gradients(&format!("{what}, {mode:?}"), seed + 20, 1e-2);
    }
}

#[test]
fn tiny_cifar_resnet_gradients_both_shortcuts_and_heads() {
    // ResNet-8 of width 4 end to end, its ReLUs made Identities (smooth): stem, three stages
    // with option-A or option-B shortcuts, BN, residual Adds, GAP and a cosine or linear head.
    let cases = [
        (Shortcut::A, Head::Cosine { scale: 5.0 }, Lowering::Cpu, 31),
        (Shortcut::A, Head::Cosine { scale: 5.0 }, Lowering::Cuda, 32),
        (Shortcut::B, Head::Linear, Lowering::Cpu, 33),
        (Shortcut::B, Head::Linear, Lowering::Cuda, 34),
    ];
    for (shortcut, head, mode, seed) in cases {
        let m = tiny_cifar_resnet(3, shortcut, head, seed, false);
        let mut t = Trainer::new(&m, &spec(4, 3, ce(), grad_sgd(), mode), seed + 10);
        t.h_scale = 3e-3;
        t.check_gradients(&format!("resnet-8 {shortcut:?} {head:?}, {mode:?}"), seed + 20, 1e-2);
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
