//! Built-in inference models: the DenseNet family (`densenet.rs`), the CIFAR ResNets of He et
//! al. 2016 §4.2 as LDAM-DRW's `resnet_cifar.py` defines them and torchvision's ImageNet
//! ResNets/ResNeXt (`resnet.rs`), with a linear or a cosine classifier ([`Head`]).
//!
//! [`build`] makes any preset by name; [`Arch::named`] gives its configuration first when a
//! caller changes it (e.g. the image side of a dataset). The table [`PRESET_TABLE`] is the one
//! list of names: help texts and errors read it.

mod densenet;
mod resnet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

pub use densenet::{DenseNetConfig, Stem, densenet, densenet_with_head, preset};
pub use resnet::{Block, CifarResNetConfig, ResNetConfig, Shortcut, cifar_resnet, resnet};

use crate::GraphError;
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Attr, Dim, GraphBuilder, Tensor};

/// The classifier on the pooled features.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Head {
    /// `logits = x·Wᵀ + b` (`W` [classes, features], as nn.Linear).
    Linear,
    /// LDAM's NormedLinear: `logits = scale · normalize(x) · normalize(W)` with `W`
    /// [features, classes], each normalised along the feature axis as `F.normalize` (divided
    /// by max(‖·‖₂, 1e-12)), no bias. `W` starts as LDAM's: U(−1, 1), columns renormed to 1.
    Cosine { scale: f32 },
}

/// One preset's family and hyper-parameters.
#[derive(Clone, Copy, Debug)]
#[allow(clippy::enum_variant_names, reason = "the families' own names")]
enum Family {
    DenseNet { growth: usize, blocks: &'static [usize], init_features: usize, imagenet: bool },
    CifarResNet { blocks_per_stage: usize, shortcut: Shortcut },
    ResNet { block: Block, layers: [usize; 4], groups: usize, width_per_group: usize },
}

/// A named preset with a one-line description.
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    family: Family,
}

const fn dense(growth: usize, blocks: &'static [usize], init_features: usize, imagenet: bool) -> Family {
    Family::DenseNet { growth, blocks, init_features, imagenet }
}

const fn cifar(n: usize, shortcut: Shortcut) -> Family {
    Family::CifarResNet { blocks_per_stage: n, shortcut }
}

const fn imagenet(block: Block, layers: [usize; 4], groups: usize, width_per_group: usize) -> Family {
    Family::ResNet { block, layers, groups, width_per_group }
}

const fn p(name: &'static str, about: &'static str, family: Family) -> Preset {
    Preset { name, about, family }
}

/// Every built-in architecture, in the order help texts list them.
pub const PRESET_TABLE: &[Preset] = &[
    p("densenet-tiny", "DenseNet-BC, k=8, blocks 2-2-2 (tests, demos)", dense(8, &[2, 2, 2], 16, false)),
    p("densenet-bc-40-k12", "DenseNet-BC-40, k=12 (CIFAR)", dense(12, &[6, 6, 6], 24, false)),
    p("densenet-bc-100-k12", "DenseNet-BC-100, k=12, 0.77M params (CIFAR)", dense(12, &[16, 16, 16], 24, false)),
    p("densenet121", "torchvision DenseNet-121 (ImageNet stem)", dense(32, &[6, 12, 24, 16], 64, true)),
    p("densenet161", "DenseNet-161 widths, CIFAR stem", dense(48, &[6, 12, 36, 24], 96, false)),
    p("resnet20", "CIFAR ResNet-20, option-A shortcuts (0.27M params)", cifar(3, Shortcut::A)),
    p("resnet32", "CIFAR ResNet-32, option-A shortcuts (0.46M params; LDAM-DRW's)", cifar(5, Shortcut::A)),
    p("resnet44", "CIFAR ResNet-44, option-A shortcuts", cifar(7, Shortcut::A)),
    p("resnet56", "CIFAR ResNet-56, option-A shortcuts", cifar(9, Shortcut::A)),
    p("resnet110", "CIFAR ResNet-110, option-A shortcuts", cifar(18, Shortcut::A)),
    p("resnet20-b", "CIFAR ResNet-20, option-B (1x1 conv + BN) shortcuts", cifar(3, Shortcut::B)),
    p("resnet32-b", "CIFAR ResNet-32, option-B shortcuts", cifar(5, Shortcut::B)),
    p("resnet44-b", "CIFAR ResNet-44, option-B shortcuts", cifar(7, Shortcut::B)),
    p("resnet56-b", "CIFAR ResNet-56, option-B shortcuts", cifar(9, Shortcut::B)),
    p("resnet110-b", "CIFAR ResNet-110, option-B shortcuts", cifar(18, Shortcut::B)),
    p("resnet10", "ResNet-10 (BasicBlock 1-1-1-1, ImageNet stem; ImageNet-LT)", imagenet(Block::Basic, [1; 4], 1, 64)),
    p("resnet18", "torchvision ResNet-18 (11.7M params)", imagenet(Block::Basic, [2, 2, 2, 2], 1, 64)),
    p("resnet34", "torchvision ResNet-34", imagenet(Block::Basic, [3, 4, 6, 3], 1, 64)),
    p("resnet50", "torchvision ResNet-50 (25.6M params)", imagenet(Block::Bottleneck, [3, 4, 6, 3], 1, 64)),
    p("resnext50_32x4d", "torchvision ResNeXt-50 32x4d", imagenet(Block::Bottleneck, [3, 4, 6, 3], 32, 4)),
];

/// The names of [`PRESET_TABLE`].
pub fn preset_names() -> Vec<&'static str> {
    PRESET_TABLE.iter().map(|p| p.name).collect()
}

/// A configured architecture of any family.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::enum_variant_names, reason = "the families' own names")]
pub enum Arch {
    DenseNet(DenseNetConfig),
    CifarResNet(CifarResNetConfig),
    ResNet(ResNetConfig),
}

impl Arch {
    /// The preset `name` with `num_classes` outputs.
    pub fn named(name: &str, num_classes: usize) -> Result<Arch, GraphError> {
        if num_classes < 2 {
            return Err(GraphError::Config(format!(
                "{name}: num_classes = {num_classes}; a classifier needs at least 2 classes"
            )));
        }
        let preset = PRESET_TABLE.iter().find(|p| p.name == name).ok_or_else(|| {
            GraphError::Config(format!("unknown architecture `{name}`; choose one of: {}", preset_names().join(", ")))
        })?;
        Ok(match preset.family {
            Family::DenseNet { growth, blocks, init_features, imagenet } => Arch::DenseNet(DenseNetConfig {
                growth,
                block_config: blocks.to_vec(),
                init_features,
                bn_size: 4,
                compression: 0.5,
                dropout: 0.0,
                stem: if imagenet { Stem::ImageNet } else { Stem::Cifar },
                num_classes,
                image_size: if imagenet { 224 } else { 32 },
            }),
            Family::CifarResNet { blocks_per_stage, shortcut } => Arch::CifarResNet(CifarResNetConfig {
                blocks_per_stage,
                shortcut,
                width: 16,
                num_classes,
                image_size: 32,
            }),
            Family::ResNet { block, layers, groups, width_per_group } => {
                Arch::ResNet(ResNetConfig { block, layers, groups, width_per_group, num_classes, image_size: 224 })
            }
        })
    }

    /// Sets the square input side (the dataset's image size).
    pub fn set_image_size(&mut self, side: usize) {
        match self {
            Arch::DenseNet(c) => c.image_size = side,
            Arch::CifarResNet(c) => c.image_size = side,
            Arch::ResNet(c) => c.image_size = side,
        }
    }

    /// The inference model with `head`, weights drawn from `seed` (same seed, same bytes).
    pub fn build(&self, head: Head, seed: u64) -> Result<ModelProto, GraphError> {
        match self {
            Arch::DenseNet(c) => densenet_with_head(c, head, seed),
            Arch::CifarResNet(c) => cifar_resnet(c, head, seed),
            Arch::ResNet(c) => resnet(c, head, seed),
        }
    }
}

/// The inference model of preset `name` (see [`PRESET_TABLE`]) with `num_classes` outputs and
/// `head`, weights drawn from `seed`.
pub fn build(name: &str, num_classes: usize, head: Head, seed: u64) -> Result<ModelProto, GraphError> {
    Arch::named(name, num_classes)?.build(head, seed)
}

/// Number of f32 values in the model's initializers (its parameters plus BN statistics).
pub fn initializer_count(model: &ModelProto) -> usize {
    model.graph.as_ref().map_or(0, |g| g.initializer.iter().map(|t| t.dims.iter().product::<i64>() as usize).sum())
}

/// Number of trainable parameters as PyTorch counts them: float initializers other than
/// BatchNorm running statistics and the constants of the graph (`const_*`: scales, epsilons).
pub fn parameter_count(model: &ModelProto) -> usize {
    let Some(g) = model.graph.as_ref() else { return 0 };
    let stats: std::collections::HashSet<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "BatchNormalization")
        .flat_map(|n| n.input.iter().skip(3).map(String::as_str))
        .collect();
    g.initializer
        .iter()
        .filter(|t| t.data_type == DataType::Float as i32 && !stats.contains(t.name.as_str()))
        .filter(|t| !t.name.starts_with("const_"))
        .map(|t| t.dims.iter().product::<i64>() as usize)
        .sum()
}

/// Kaiming-normal fan of a conv or linear weight.
#[derive(Clone, Copy)]
enum Fan {
    /// fan_in = in·k·k (PyTorch's default; torchvision's DenseNet, LDAM's CIFAR ResNet).
    In,
    /// fan_out = out·k·k (torchvision's ResNet).
    Out,
}

/// A model under construction: the graph and the seeded generator of its weights.
struct Net {
    g: GraphBuilder,
    rng: ChaCha8Rng,
}

/// A convolution's shape.
#[derive(Clone, Copy)]
struct ConvShape {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    group: usize,
}

impl ConvShape {
    const fn new(cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Self {
        ConvShape { cin, cout, k, stride, pad, group: 1 }
    }
}

impl Net {
    fn new(name: &str, seed: u64) -> Self {
        Net { g: GraphBuilder::new(name), rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// `n` draws of N(0, std²).
    fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        let normal = Normal::new(0.0, std).expect("finite std");
        (0..n).map(|_| self.rng.sample(normal) as f32).collect()
    }

    /// The images input [N, 3, side, side] with a free batch.
    fn images(&mut self, side: usize) -> Result<String, GraphError> {
        let side = side as i64;
        let dims = [Dim::Param("N".into()), Dim::Fixed(3), Dim::Fixed(side), Dim::Fixed(side)];
        self.g.input_dims("images", DataType::Float, &dims)
    }

    /// A bias-free Conv named `name` with a Kaiming-normal weight.
    fn conv(&mut self, x: &str, name: &str, c: ConvShape, fan: Fan) -> Result<String, GraphError> {
        let ConvShape { cin, cout, k, stride, pad, group } = c;
        let fan = match fan {
            Fan::In => cin / group * k * k,
            Fan::Out => cout / group * k * k,
        };
        let data = self.normal(cout * cin / group * k * k, (2.0 / fan as f64).sqrt());
        let dims = [cout as i64, (cin / group) as i64, k as i64, k as i64];
        let w = self.g.initializer(&format!("{name}.weight"), &Tensor::f32(&dims, data))?;
        let (k, s, p) = (k as i64, stride as i64, pad as i64);
        let mut attrs = vec![
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(vec![p; 4])),
        ];
        if group > 1 {
            attrs.push(("group", Attr::Int(group as i64)));
        }
        self.g.op("Conv", &[x, &w], &attrs)
    }

    /// BatchNormalization named `name` (weight 1, bias 0, PyTorch's eps and momentum).
    fn norm(&mut self, x: &str, name: &str, c: usize) -> Result<String, GraphError> {
        let c64 = c as i64;
        let gamma = self.g.initializer(&format!("{name}.weight"), &Tensor::f32(&[c64], vec![1.0; c]))?;
        let beta = self.g.initializer(&format!("{name}.bias"), &Tensor::f32(&[c64], vec![0.0; c]))?;
        let mean = self.g.initializer(&format!("{name}.running_mean"), &Tensor::f32(&[c64], vec![0.0; c]))?;
        let var = self.g.initializer(&format!("{name}.running_var"), &Tensor::f32(&[c64], vec![1.0; c]))?;
        self.g.op(
            "BatchNormalization",
            &[x, &gamma, &beta, &mean, &var],
            &[("epsilon", Attr::Float(1e-5)), ("momentum", Attr::Float(0.9))],
        )
    }

    fn relu(&mut self, x: &str) -> Result<String, GraphError> {
        self.g.op("Relu", &[x], &[])
    }

    fn norm_relu(&mut self, x: &str, name: &str, c: usize) -> Result<String, GraphError> {
        let y = self.norm(x, name, c)?;
        self.relu(&y)
    }

    /// Global average pool and flatten: [N, C, H, W] -> [N, C].
    fn pool_flatten(&mut self, x: &str) -> Result<String, GraphError> {
        let h = self.g.op("GlobalAveragePool", &[x], &[])?;
        self.g.op("Flatten", &[&h], &[("axis", Attr::Int(1))])
    }

    /// A linear head `name` whose weight [k, c] is drawn by `weight` and whose bias is
    /// nn.Linear's U(−1/√c, 1/√c).
    fn linear(
        &mut self,
        x: &str,
        name: &str,
        c: usize,
        k: usize,
        weight: impl FnOnce(&mut Self) -> Vec<f32>,
    ) -> Result<String, GraphError> {
        let wdata = weight(self);
        let bound = 1.0 / (c as f32).sqrt();
        let bdata: Vec<f32> = (0..k).map(|_| self.rng.random_range(-bound..bound)).collect();
        let w = self.g.initializer(&format!("{name}.weight"), &Tensor::f32(&[k as i64, c as i64], wdata))?;
        let b = self.g.initializer(&format!("{name}.bias"), &Tensor::f32(&[k as i64], bdata))?;
        self.g.op("Gemm", &[x, &w, &b], &[("transB", Attr::Int(1))])
    }

    /// LDAM's NormedLinear `name` (see [`Head::Cosine`]).
    fn cosine(&mut self, x: &str, name: &str, c: usize, k: usize, scale: f32) -> Result<String, GraphError> {
        let mut w: Vec<f32> = (0..c * k).map(|_| self.rng.random_range(-1.0f32..1.0)).collect();
        for col in 0..k {
            let norm = (0..c).map(|r| w[r * k + col].powi(2)).sum::<f32>().sqrt().max(1e-12);
            (0..c).for_each(|r| w[r * k + col] /= norm);
        }
        let w = self.g.initializer(&format!("{name}.weight"), &Tensor::f32(&[c as i64, k as i64], w))?;
        let xn = self.normalize(x, 1)?;
        let wn = self.normalize(&w, 0)?;
        let cos = self.g.op("MatMul", &[&xn, &wn], &[])?;
        if scale == 1.0 {
            return Ok(cos);
        }
        let s = self.g.constant(&Tensor::F32 { dims: vec![], data: vec![scale] });
        self.g.op("Mul", &[&cos, &s], &[])
    }

    /// `F.normalize(x, dim=axis)`: x / max(‖x‖₂ along `axis`, 1e-12).
    fn normalize(&mut self, x: &str, axis: i64) -> Result<String, GraphError> {
        let norm = self.g.op("ReduceL2", &[x], &[("axes", Attr::Ints(vec![axis])), ("keepdims", Attr::Int(1))])?;
        let eps = self.g.constant(&Tensor::F32 { dims: vec![], data: vec![1e-12] });
        let clamped = self.g.op("Max", &[&norm, &eps], &[])?;
        self.g.op("Div", &[x, &clamped], &[])
    }

    /// The classifier `head` over features [N, c]: a linear layer (`linear_weight` draws its
    /// weight) or a cosine one, named `name`; then the `logits` output.
    fn head(
        mut self,
        x: &str,
        name: &str,
        c: usize,
        k: usize,
        head: Head,
        linear_weight: impl FnOnce(&mut Self) -> Vec<f32>,
    ) -> Result<ModelProto, GraphError> {
        let logits = match head {
            Head::Linear => self.linear(x, name, c, k, linear_weight)?,
            Head::Cosine { scale } => {
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(GraphError::Config(format!("the cosine head's scale must be > 0 (got {scale})")));
                }
                self.cosine(x, name, c, k, scale)?
            }
        };
        let dims = [Dim::Param("N".into()), Dim::Fixed(k as i64)];
        self.g.output_dims(&logits, "logits", DataType::Float, &dims)?;
        Ok(self.g.finish())
    }
}
