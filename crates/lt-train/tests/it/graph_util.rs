//! Helpers for the training-graph tests: a seeded generator, a session runner over
//! `TrainingGraph`, and small hand-built inference models.

use std::collections::HashMap;

use lt_graph::onnx::proto::{DataType, ModelProto};
use lt_graph::onnx::{Attr, Dim, GraphBuilder, Tensor};
use lt_graph::train::{
    Loss, Lowering, Sgd, StateKind, StepOptions, TrainingGraph, TrainingGraphSpec, training_graph_with,
};
use ort::session::Session;

/// splitmix64: a tiny seeded generator (tests need no dependency for this).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal() as f32).collect()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Every loss lt trains with, each of its parameters at a typical and an untypical value.
pub fn every_loss() -> [Loss; 8] {
    [
        Loss::CrossEntropy { label_smoothing: 0.0 },
        Loss::CrossEntropy { label_smoothing: 0.1 },
        Loss::Focal { gamma: 2.0 },
        Loss::Focal { gamma: 0.5 },
        Loss::Ldam { max_margin: 0.5, scale: 30.0 },
        Loss::BalancedSoftmax { tau: 1.0 },
        Loss::Vs { gamma: 0.3, tau: 1.0 },
        Loss::Vs { gamma: 1.0, tau: 0.5 },
    ]
}

pub fn spec(batch: usize, classes: usize, loss: Loss, sgd: Sgd, lowering: Lowering) -> TrainingGraphSpec {
    TrainingGraphSpec {
        batch_size: batch,
        loss,
        sgd,
        class_counts: (0..classes as u64).map(|c| 100 / (c + 1) + 1).collect(),
        lowering,
        mixed_labels: false,
    }
}

/// Plain SGD without momentum or decay: `<p>.momentum.new` is then exactly the gradient.
pub fn grad_sgd() -> Sgd {
    Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0, decay_bn_and_bias: true }
}

pub fn ce() -> Loss {
    Loss::CrossEntropy { label_smoothing: 0.0 }
}

/// A training graph with its session and a fixed batch.
pub struct Trainer {
    pub tg: TrainingGraph,
    pub session: Session,
    pub batch: usize,
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub class_weights: Vec<f32>,
    /// `labels_mix` and `mix_lambda` of a graph built with `mixed_labels`.
    pub mix: Option<(Vec<i64>, f32)>,
    pub state: HashMap<String, Vec<f32>>,
    /// Finite-difference step per unit of the random direction.
    pub h_scale: f64,
    /// When set, every run uses a fresh session over these bytes (see
    /// [`Trainer::fix_dropout_masks`]).
    fresh_sessions: Option<Vec<u8>>,
}

pub type Outputs = HashMap<String, Vec<f32>>;

impl Trainer {
    pub fn new(inference: &ModelProto, spec: &TrainingGraphSpec, seed: u64) -> Trainer {
        Trainer::with_options(inference, spec, &StepOptions::default(), seed)
    }

    /// [`Trainer::new`] over the step built with `opts` (head only, MaxNorm, SAM).
    pub fn with_options(inference: &ModelProto, spec: &TrainingGraphSpec, opts: &StepOptions, seed: u64) -> Trainer {
        let tg = training_graph_with(inference, spec, opts).expect("training graph");
        let bytes = lt_graph::onnx::encode(&tg.model);
        let session = lt_train::device::Device::Cpu.session(&bytes, 2).expect("session over the training graph");
        let mut rng = Rng::new(seed);
        let [c, h, w] = tg.image_shape;
        let b = spec.batch_size;
        let images = rng.normals(b * c * h * w);
        let labels: Vec<i64> = (0..b).map(|_| rng.below(tg.num_classes as u64) as i64).collect();
        let class_weights = (0..tg.num_classes).map(|_| 0.25 + 1.5 * rng.uniform() as f32).collect();
        let state = tg.state.iter().map(|s| (s.name.clone(), s.init.clone())).collect();
        let mix = spec.mixed_labels.then(|| (labels.iter().rev().copied().collect(), 0.3));
        Trainer {
            tg,
            session,
            batch: b,
            images,
            labels,
            class_weights,
            mix,
            state,
            h_scale: 1e-2,
            fresh_sessions: None,
        }
    }

    /// Gives every Dropout node a fixed seed and runs each step in a fresh session, so every
    /// run draws the same masks (a session's generator advances from run to run): the loss
    /// is then a deterministic function of the state, as finite differences need.
    pub fn fix_dropout_masks(&mut self, seed: i64) {
        let graph = self.tg.model.graph.as_mut().unwrap();
        let mut found = false;
        for n in graph.node.iter_mut().filter(|n| n.op_type == "Dropout") {
            n.attribute.push(lt_graph::onnx::attribute("seed", &Attr::Int(seed)));
            found = true;
        }
        assert!(found, "the training graph has no Dropout node");
        self.fresh_sessions = Some(lt_graph::onnx::encode(&self.tg.model));
    }

    /// Runs one step on the fixed batch with `state` (not modified) and returns every output.
    pub fn run_with(&mut self, state: &HashMap<String, Vec<f32>>, lr: f32) -> Outputs {
        let [c, h, w] = self.tg.image_shape;
        let b = self.batch;
        let mut inputs: Vec<(String, ort::session::SessionInputValue<'static>)> = vec![
            ("images".into(), ort::value::Tensor::from_array(([b, c, h, w], self.images.clone())).unwrap().into()),
            ("labels".into(), ort::value::Tensor::from_array(([b], self.labels.clone())).unwrap().into()),
            (
                "class_weights".into(),
                ort::value::Tensor::from_array(([self.tg.num_classes], self.class_weights.clone())).unwrap().into(),
            ),
            ("lr".into(), ort::value::Tensor::from_array(((), vec![lr])).unwrap().into()),
        ];
        if let Some((labels_mix, lambda)) = &self.mix {
            inputs
                .push(("labels_mix".into(), ort::value::Tensor::from_array(([b], labels_mix.clone())).unwrap().into()));
            inputs.push(("mix_lambda".into(), ort::value::Tensor::from_array(((), vec![*lambda])).unwrap().into()));
        }
        for s in &self.tg.state {
            let v = state[&s.name].clone();
            inputs.push((s.name.clone(), ort::value::Tensor::from_array((s.dims.clone(), v)).unwrap().into()));
        }
        if let Some(bytes) = &self.fresh_sessions {
            self.session = lt_train::device::Device::Cpu.session(bytes, 2).expect("session over the training graph");
        }
        let outputs = self.session.run(inputs).expect("training step runs");
        let mut out = HashMap::new();
        for (name, v) in outputs.iter() {
            let (_, data) = v.try_extract_tensor::<f32>().expect("f32 output");
            out.insert(name.to_string(), data.to_vec());
        }
        out
    }

    /// One step that updates the state; returns the loss.
    pub fn step(&mut self, lr: f32) -> f32 {
        let state = self.state.clone();
        let out = self.run_with(&state, lr);
        for s in &self.tg.state {
            self.state.insert(s.name.clone(), out[&s.output].clone());
        }
        out["loss"][0]
    }

    pub fn params(&self) -> Vec<String> {
        self.tg.state.iter().filter(|s| s.kind == StateKind::Parameter).map(|s| s.name.clone()).collect()
    }

    /// Checks every parameter's gradient (read from the momentum output of a momentum-free
    /// SGD) against a central finite difference of the loss along a random direction.
    pub fn check_gradients(&mut self, what: &str, seed: u64, tolerance: f64) {
        let base = self.state.clone();
        let out = self.run_with(&base, 0.0);
        let mut rng = Rng::new(seed);
        let mut report = Vec::new();
        let mut worst: f64 = 0.0;
        for p in self.params() {
            let g = &out[&format!("{p}.momentum.new")];
            let dir: Vec<f32> = rng.normals(g.len());
            let analytic: f64 = g.iter().zip(&dir).map(|(&a, &b)| a as f64 * b as f64).sum();
            let norm: f64 = dir.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            // Steps of `h_scale` and `h_scale / 3` per unit of the random direction (entries
            // N(0,1)); the better agreement counts (large steps meet ReLU kinks, small ones
            // float32 rounding).
            let mut best = (f64::MAX, 0.0);
            for h in [self.h_scale, self.h_scale / 3.0] {
                let h = h * (g.len() as f64).sqrt() / norm.max(1e-12);
                let loss_at = |t: &mut Trainer, sign: f64| {
                    let mut st = base.clone();
                    let v = st.get_mut(&p).unwrap();
                    for (x, d) in v.iter_mut().zip(&dir) {
                        *x += (sign * h * *d as f64) as f32;
                    }
                    t.run_with(&st, 0.0)["loss"][0] as f64
                };
                let fd = (loss_at(self, 1.0) - loss_at(self, -1.0)) / (2.0 * h);
                // A gradient that is exactly zero (a BN bias before another BN) is compared
                // absolutely (an absolute error of 0.1 x tolerance is allowed).
                let err = (fd - analytic).abs() / (analytic.abs().max(fd.abs()).max(0.1));
                if err < best.0 {
                    best = (err, fd);
                }
            }
            let (err, fd) = best;
            worst = worst.max(err);
            report.push(format!("{p}: analytic {analytic:.6e} fd {fd:.6e} rel {err:.2e}"));
        }
        assert!(worst < tolerance, "{what}: gradient check failed\n{}", report.join("\n"));
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    g: &mut GraphBuilder,
    rng: &mut Rng,
    x: &str,
    name: &str,
    cin: i64,
    cout: i64,
    k: i64,
    s: i64,
    p: i64,
    bias: bool,
) -> String {
    let std = (2.0 / (cin * k * k) as f64).sqrt() as f32;
    let w = g
        .initializer(
            &format!("{name}.weight"),
            &Tensor::f32(
                &[cout, cin, k, k],
                rng.normals((cout * cin * k * k) as usize).iter().map(|v| v * std).collect(),
            ),
        )
        .unwrap();
    let mut ins = vec![x.to_string(), w];
    if bias {
        ins.push(g.initializer(&format!("{name}.bias"), &Tensor::f32(&[cout], rng.normals(cout as usize))).unwrap());
    }
    let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
    g.op(
        "Conv",
        &refs,
        &[
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(vec![p; 4])),
        ],
    )
    .unwrap()
}

fn bn(g: &mut GraphBuilder, rng: &mut Rng, x: &str, name: &str, c: i64) -> String {
    let gm: Vec<f32> = (0..c).map(|_| 0.5 + rng.uniform() as f32).collect();
    let gamma = g.initializer(&format!("{name}.weight"), &Tensor::f32(&[c], gm)).unwrap();
    let beta = g.initializer(&format!("{name}.bias"), &Tensor::f32(&[c], rng.normals(c as usize))).unwrap();
    let rm = g.initializer(&format!("{name}.running_mean"), &Tensor::f32(&[c], vec![0.0; c as usize])).unwrap();
    let rv = g.initializer(&format!("{name}.running_var"), &Tensor::f32(&[c], vec![1.0; c as usize])).unwrap();
    g.op("BatchNormalization", &[x, &gamma, &beta, &rm, &rv], &[("epsilon", Attr::Float(1e-5))]).unwrap()
}

fn head(g: &mut GraphBuilder, rng: &mut Rng, x: &str, c: i64, classes: i64) -> String {
    let gp = g.op("GlobalAveragePool", &[x], &[]).unwrap();
    let fl = g.op("Flatten", &[&gp], &[("axis", Attr::Int(1))]).unwrap();
    let w = g.initializer("fc.weight", &Tensor::f32(&[classes, c], rng.normals((classes * c) as usize))).unwrap();
    let b = g.initializer("fc.bias", &Tensor::f32(&[classes], rng.normals(classes as usize))).unwrap();
    g.op("Gemm", &[&fl, &w, &b], &[("transB", Attr::Int(1))]).unwrap()
}

/// BatchNormalization of `x`, then a ReLU when `relu`.
fn bn_relu(g: &mut GraphBuilder, rng: &mut Rng, x: &str, name: &str, ch: i64, relu: bool) -> String {
    let h = bn(g, rng, x, name, ch);
    if relu { g.op("Relu", &[&h], &[]).unwrap() } else { h }
}

/// A graph named `name` with its batch of `images` [N, C, H, W] as input.
fn images_graph(name: &str, chw: [i64; 3]) -> (GraphBuilder, String) {
    let mut g = GraphBuilder::new(name);
    let dims: Vec<Dim> = std::iter::once(Dim::Param("N".into())).chain(chw.map(Dim::Fixed)).collect();
    let x = g.input_dims("images", DataType::Float, &dims).unwrap();
    (g, x)
}

fn finish(mut g: GraphBuilder, logits: &str, classes: i64) -> ModelProto {
    g.output_dims(logits, "logits", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(classes)]).unwrap();
    g.finish()
}

/// CIFAR-like composition: conv3x3 → BN → relu → conv1x1 → BN → relu → conv3x3 → concat →
/// BN → relu → conv3x3 → concat (nested: BatchNorm statistics shared through both) → BN →
/// relu → conv1x1 (pad 1) → avgpool 2x2 → BN → relu → GAP → Gemm.
/// `relu: false` drops the ReLUs: their kinks make float32 finite differences noisy, so
/// the other rules are checked on the smooth composition at a tight tolerance.
pub fn dense_block_net(classes: i64, side: i64, seed: u64, relu: bool) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("block", [3, side, side]);
    let a = conv(&mut g, &mut rng, &x, "c0", 3, 6, 3, 1, 1, false);
    let h = bn_relu(&mut g, &mut rng, &a, "b1", 6, relu);
    let h = conv(&mut g, &mut rng, &h, "c1", 6, 8, 1, 1, 0, false);
    let h = bn_relu(&mut g, &mut rng, &h, "b2", 8, relu);
    let h = conv(&mut g, &mut rng, &h, "c2", 8, 4, 3, 1, 1, false);
    let cat = g.op("Concat", &[&a, &h], &[("axis", Attr::Int(1))]).unwrap();
    let h = bn_relu(&mut g, &mut rng, &cat, "b3", 10, relu);
    let h = conv(&mut g, &mut rng, &h, "c4", 10, 3, 3, 1, 1, false);
    let cat = g.op("Concat", &[&cat, &h], &[("axis", Attr::Int(1))]).unwrap();
    let h = bn_relu(&mut g, &mut rng, &cat, "b5", 13, relu);
    // 1x1 with padding 1: its weight gradient crops dY (the Pad form of the shifted taps).
    let h = conv(&mut g, &mut rng, &h, "c3", 13, 5, 1, 1, 1, false);
    let h = g
        .op("AveragePool", &[&h], &[("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))])
        .unwrap();
    let h = bn_relu(&mut g, &mut rng, &h, "b4", 5, relu);
    let logits = head(&mut g, &mut rng, &h, 5, classes);
    finish(g, &logits, classes)
}

/// ImageNet-stem composition: conv7x7/2 → BN → relu → maxpool 3x3/2 → conv3x3/2 with bias →
/// relu → ReduceMean over H,W → MatMul → Add bias.
pub fn stem_net(classes: i64, side: i64, seed: u64, relu: bool) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("stem", [3, side, side]);
    let h = conv(&mut g, &mut rng, &x, "c0", 3, 6, 7, 2, 3, false);
    let h = bn_relu(&mut g, &mut rng, &h, "b0", 6, relu);
    let h = g
        .op(
            "MaxPool",
            &[&h],
            &[
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![2, 2])),
                ("pads", Attr::Ints(vec![1; 4])),
            ],
        )
        .unwrap();
    let h = conv(&mut g, &mut rng, &h, "c1", 6, 7, 3, 2, 1, true);
    let h = if relu { g.op("Relu", &[&h], &[]).unwrap() } else { h };
    let h = g.op("ReduceMean", &[&h], &[("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(0))]).unwrap();
    let w = g.initializer("fc.weight", &Tensor::f32(&[7, classes], rng.normals((7 * classes) as usize))).unwrap();
    let b = g.initializer("fc.bias", &Tensor::f32(&[classes], rng.normals(classes as usize))).unwrap();
    let z = g.op("MatMul", &[&h, &w], &[]).unwrap();
    let logits = g.op("Add", &[&z, &b], &[]).unwrap();
    finish(g, &logits, classes)
}

/// Linear classifier on the flattened image: logits = flatten(x)·Wᵀ + b.
pub fn linear_net(classes: i64, c: i64, side: i64, seed: u64) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("linear", [c, side, side]);
    let fl = g.op("Flatten", &[&x], &[("axis", Attr::Int(1))]).unwrap();
    let f = c * side * side;
    let w = g.initializer("fc.weight", &Tensor::f32(&[classes, f], rng.normals((classes * f) as usize))).unwrap();
    let b = g.initializer("fc.bias", &Tensor::f32(&[classes], rng.normals(classes as usize))).unwrap();
    let logits = g.op("Gemm", &[&fl, &w, &b], &[("transB", Attr::Int(1))]).unwrap();
    finish(g, &logits, classes)
}

/// The Python interpreter for cross-checks; panics (never skips) when it is not configured.
pub fn python() -> String {
    std::env::var("LT_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("LT_TEST_PYTHON is not set: run the tests through scripts/test.sh, or export LT_TEST_PYTHON=/work/main/.venv-test/bin/python (a venv with the `onnx` package)")
    })
}

/// A smooth model over the shape ops and the ops the other compositions lack: Identity, a
/// Reshape by a Constant node's shape (0 and -1), MatMul, Add of a 1-D and of a 2-D
/// parameter, Dropout (ratio from a Constant node), ReduceMean (keepdims), Squeeze (with and
/// without axes), Gemm with alpha/beta and a broadcast C, and Gemm with transA.
pub fn shape_ops_net(classes: i64, seed: u64) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("shape-ops", [2, 3, 3]);
    let mut param = |g: &mut GraphBuilder, name: &str, dims: &[i64], scale: f32| {
        let len = dims.iter().product::<i64>() as usize;
        g.initializer(name, &Tensor::f32(dims, rng.normals(len).iter().map(|v| v * scale).collect())).unwrap()
    };
    let constant = |g: &mut GraphBuilder, name: &str, t: Tensor| {
        let value = lt_graph::onnx::attribute("value", &Attr::Tensor(t));
        g.node_named("Constant", &[], &[name], vec![value]).unwrap();
        name.to_string()
    };
    let id = g.op("Identity", &[&x], &[]).unwrap();
    let flat = constant(&mut g, "flat_shape", Tensor::i64(&[2], vec![0, -1]));
    let r = g.op("Reshape", &[&id, &flat], &[]).unwrap(); // [N, 18]
    let w1 = param(&mut g, "w1", &[18, 6], 0.3);
    let z = g.op("MatMul", &[&r, &w1], &[]).unwrap();
    let b1 = param(&mut g, "b1", &[6], 1.0);
    let z = g.op("Add", &[&z, &b1], &[]).unwrap();
    let ratio = constant(&mut g, "ratio", Tensor::F32 { dims: vec![], data: vec![0.3] });
    let d = g.op("Dropout", &[&z, &ratio], &[]).unwrap();
    let grid = constant(&mut g, "grid_shape", Tensor::i64(&[4], vec![0, 2, 3, 1]));
    let u = g.op("Reshape", &[&d, &grid], &[]).unwrap(); // [N, 2, 3, 1]
    let m = g.op("ReduceMean", &[&u], &[("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(1))]).unwrap();
    let axes = g.initializer("squeeze_axes", &Tensor::i64(&[1], vec![3])).unwrap();
    let s = g.op("Squeeze", &[&m, &axes], &[]).unwrap(); // [N, 2, 1]
    let s = g.op("Squeeze", &[&s], &[]).unwrap(); // [N, 2]
    let w2 = param(&mut g, "w2", &[1, 2], 1.0);
    let t = g.op("Add", &[&s, &w2], &[]).unwrap();
    let w3 = param(&mut g, "w3", &[2, classes], 1.0);
    let b3 = param(&mut g, "b3", &[1, classes], 1.0);
    let y = g.op("Gemm", &[&t, &w3, &b3], &[("alpha", Attr::Float(0.7)), ("beta", Attr::Float(1.3))]).unwrap();
    let w4 = param(&mut g, "w4", &[classes, classes], 0.5);
    let yt = g.op("Gemm", &[&w4, &y], &[("transB", Attr::Int(1))]).unwrap(); // [classes, N]
    let w5 = param(&mut g, "w5", &[classes, classes], 0.5);
    let logits = g.op("Gemm", &[&yt, &w5], &[("transA", Attr::Int(1))]).unwrap(); // [N, classes]
    finish(g, &logits, classes)
}

/// The ops of residual networks and the cosine head, smooth (no ReLU): conv 3x3 → h1; a
/// grouped conv (group 2, stride 1) → a grouped conv (group 4, stride 2) → h3; the shortcut
/// of h1 by a strided Slice (the width axis from an odd start, so its backward crops) and a
/// channel Pad; residual Add of h3 and the shortcut (both need gradients), Max and Mul of
/// the two branches; GAP, Flatten and LDAM's NormedLinear: ReduceL2, Max with eps, Div
/// (features and weight normalised), MatMul and a Mul by the scale.
pub fn residual_ops_net(classes: i64, seed: u64) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("residual-ops", [3, 6, 6]);
    let h1 = conv(&mut g, &mut rng, &x, "c0", 3, 4, 3, 1, 1, false);
    let grouped =
        |g: &mut GraphBuilder, rng: &mut Rng, x: &str, name: &str, cin: i64, cout: i64, s: i64, group: i64| {
            let cg = cin / group;
            let std = (2.0 / (cg * 9) as f64).sqrt() as f32;
            let data = rng.normals((cout * cg * 9) as usize).iter().map(|v| v * std).collect();
            let w = g.initializer(&format!("{name}.weight"), &Tensor::f32(&[cout, cg, 3, 3], data)).unwrap();
            let attrs = [
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![s, s])),
                ("pads", Attr::Ints(vec![1; 4])),
                ("group", Attr::Int(group)),
            ];
            g.op("Conv", &[x, &w], &attrs).unwrap()
        };
    let h2 = grouped(&mut g, &mut rng, &h1, "g2", 4, 8, 1, 2);
    let h3 = grouped(&mut g, &mut rng, &h2, "g4", 8, 8, 2, 4); // [N, 8, 3, 3]
    let starts = g.initializer("slice_starts", &Tensor::i64(&[2], vec![0, 1])).unwrap();
    let ends = g.initializer("slice_ends", &Tensor::i64(&[2], vec![i64::MAX, i64::MAX])).unwrap();
    let axes = g.initializer("slice_axes", &Tensor::i64(&[2], vec![2, 3])).unwrap();
    let steps = g.initializer("slice_steps", &Tensor::i64(&[2], vec![2, 2])).unwrap();
    let sub = g.op("Slice", &[&h1, &starts, &ends, &axes, &steps], &[]).unwrap(); // [N, 4, 3, 3]
    let pads = g.initializer("pads", &Tensor::i64(&[8], vec![0, 2, 0, 0, 0, 2, 0, 0])).unwrap();
    let short = g.op("Pad", &[&sub, &pads], &[]).unwrap(); // [N, 8, 3, 3]
    let r = g.op("Add", &[&h3, &short], &[]).unwrap();
    let m = g.op("Max", &[&h3, &short], &[]).unwrap();
    let q = g.op("Mul", &[&r, &m], &[]).unwrap();
    let gp = g.op("GlobalAveragePool", &[&q], &[]).unwrap();
    let f = g.op("Flatten", &[&gp], &[("axis", Attr::Int(1))]).unwrap(); // [N, 8]
    let eps = g.initializer("eps", &Tensor::F32 { dims: vec![], data: vec![1e-12] }).unwrap();
    let normalize = |g: &mut GraphBuilder, v: &str, axis: i64| {
        let l2 = g.op("ReduceL2", &[v], &[("axes", Attr::Ints(vec![axis])), ("keepdims", Attr::Int(1))]).unwrap();
        let c = g.op("Max", &[&l2, &eps], &[]).unwrap();
        g.op("Div", &[v, &c], &[]).unwrap()
    };
    let fnorm = normalize(&mut g, &f, 1);
    let w = g.initializer("fc.weight", &Tensor::f32(&[8, classes], rng.normals((8 * classes) as usize))).unwrap();
    let wnorm = normalize(&mut g, &w, 0);
    let cos = g.op("MatMul", &[&fnorm, &wnorm], &[]).unwrap();
    let scale = g.initializer("scale", &Tensor::F32 { dims: vec![], data: vec![4.0] }).unwrap();
    let logits = g.op("Mul", &[&cos, &scale], &[]).unwrap();
    finish(g, &logits, classes)
}

/// A CIFAR ResNet-8 (one block per stage) of width 4 on 8x8 images. `relu: false` turns its
/// ReLUs into Identities: ReLU kinks make float32 finite differences noisy, so the rest of
/// the composition is checked smooth at a tight tolerance.
pub fn tiny_cifar_resnet(
    classes: usize,
    shortcut: lt_graph::models::Shortcut,
    head: lt_graph::models::Head,
    seed: u64,
    relu: bool,
) -> ModelProto {
    let cfg = lt_graph::models::CifarResNetConfig {
        blocks_per_stage: 1,
        shortcut,
        width: 4,
        num_classes: classes,
        image_size: 8,
    };
    let mut m = lt_graph::models::cifar_resnet(&cfg, head, seed).unwrap();
    if !relu {
        for n in m.graph.as_mut().unwrap().node.iter_mut().filter(|n| n.op_type == "Relu") {
            n.op_type = "Identity".into();
        }
    }
    m
}

/// LDAM's NormedLinear as the TorchScript exporter writes it: features clamped by a Clip
/// with both bounds (some entries clipped, so the mask is exercised), then each side
/// normalised as ReduceL2 → Clip(min = eps only) → Expand (batch-free target, as the
/// importer leaves it) → Div, and a MatMul.
pub fn clip_expand_net(classes: i64, seed: u64) -> ModelProto {
    let mut rng = Rng::new(seed);
    let (mut g, x) = images_graph("clip-expand", [3, 4, 4]);
    let h = conv(&mut g, &mut rng, &x, "c0", 3, 6, 3, 1, 1, true);
    let gp = g.op("GlobalAveragePool", &[&h], &[]).unwrap();
    let f = g.op("Flatten", &[&gp], &[("axis", Attr::Int(1))]).unwrap(); // [N, 6]
    let lo = g.initializer("clip_lo", &Tensor::F32 { dims: vec![], data: vec![-0.4] }).unwrap();
    let hi = g.initializer("clip_hi", &Tensor::F32 { dims: vec![], data: vec![0.4] }).unwrap();
    let f = g.op("Clip", &[&f, &lo, &hi], &[]).unwrap();
    let eps = g.initializer("eps", &Tensor::F32 { dims: vec![], data: vec![1e-12] }).unwrap();
    let normalize = |g: &mut GraphBuilder, v: &str, axis: i64, target: Vec<i64>, name: &str| {
        let l2 = g.op("ReduceL2", &[v], &[("axes", Attr::Ints(vec![axis])), ("keepdims", Attr::Int(1))]).unwrap();
        let c = g.op("Clip", &[&l2, &eps], &[]).unwrap();
        let t = g.initializer(name, &Tensor::i64(&[2], target)).unwrap();
        let e = g.op("Expand", &[&c, &t], &[]).unwrap();
        g.op("Div", &[v, &e], &[]).unwrap()
    };
    let fnorm = normalize(&mut g, &f, 1, vec![1, 6], "expand_f");
    let w = g.initializer("linear.weight", &Tensor::f32(&[6, classes], rng.normals((6 * classes) as usize))).unwrap();
    let wnorm = normalize(&mut g, &w, 0, vec![6, classes], "expand_w");
    let cos = g.op("MatMul", &[&fnorm, &wnorm], &[]).unwrap();
    let scale = g.initializer("scale", &Tensor::F32 { dims: vec![], data: vec![4.0] }).unwrap();
    let logits = g.op("Mul", &[&cos, &scale], &[]).unwrap();
    finish(g, &logits, classes)
}
