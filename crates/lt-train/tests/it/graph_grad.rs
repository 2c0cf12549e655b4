//! Every backward rule of the training graph against central finite differences, through
//! onnxruntime CPU (ops in small compositions, both conv-gradient formulations, all losses).
//! The gradient is read from `<p>.momentum.new` of a momentum-free SGD step; the finite
//! difference is taken along a random direction per parameter tensor. ReLU kinks make float32
//! differences noisy, so smooth compositions get a tight tolerance and the ReLU ones a small
//! size, a small step and a looser one.

use lt_graph::train::{Loss, Lowering};

use crate::graph_util::{Trainer, ce, dense_block_net, grad_sgd, linear_net, spec, stem_net};

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
    ];
    for (i, loss) in losses.into_iter().enumerate() {
        let m = linear_net(6, 2, 3, 30 + i as u64);
        let mut t = Trainer::new(&m, &spec(8, 6, loss.clone(), grad_sgd(), Lowering::Cpu), 40 + i as u64);
        // LDAM multiplies the logits by 30: a smaller step keeps the difference quadratic.
        t.h_scale = if matches!(loss, Loss::Ldam { .. }) { 3e-4 } else { 3e-3 };
        t.check_gradients(&format!("{loss:?}"), 50 + i as u64, 3e-3);
    }
}
