//! The DenseNet family as inference models (torchvision-like structure and initializer names).

use rand::Rng;

use super::{ConvShape, Fan, Head, Net};
use crate::GraphError;
use crate::onnx::proto::ModelProto;
use crate::onnx::{Attr, Tensor};

/// The first layers: CIFAR (one 3x3 conv) or ImageNet (7x7/2 conv, BN, ReLU, 3x3/2 max-pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stem {
    Cifar,
    ImageNet,
}

/// DenseNet(-BC) hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseNetConfig {
    /// Growth rate k: channels each dense layer adds.
    pub growth: usize,
    /// Dense layers per block.
    pub block_config: Vec<usize>,
    /// Channels out of the stem.
    pub init_features: usize,
    /// Bottleneck width factor (1x1 conv to `bn_size * growth` channels); 0 = no bottleneck.
    pub bn_size: usize,
    /// Transition compression (0.5 for DenseNet-BC).
    pub compression: f32,
    /// Dropout rate after each dense layer's last conv (0 = none).
    pub dropout: f32,
    pub stem: Stem,
    pub num_classes: usize,
    /// Square input side (32 for CIFAR-like data, 224 for ImageNet-like).
    pub image_size: usize,
}

/// The DenseNet preset `name` (one of [`super::PRESET_TABLE`]'s DenseNets) with
/// `num_classes` outputs. [`super::Arch::named`] takes every family.
pub fn preset(name: &str, num_classes: usize) -> Result<DenseNetConfig, GraphError> {
    match super::Arch::named(name, num_classes)? {
        super::Arch::DenseNet(cfg) => Ok(cfg),
        _ => Err(GraphError::Config(format!(
            "`{name}` is not a DenseNet; build it with lt_graph::models::build (or Arch::named)"
        ))),
    }
}

/// Builds the inference model of `cfg` with a linear classifier, weights drawn from `seed`
/// (same seed, same bytes).
pub fn densenet(cfg: &DenseNetConfig, seed: u64) -> Result<ModelProto, GraphError> {
    densenet_with_head(cfg, Head::Linear, seed)
}

/// [`densenet`] with the classifier `head` (`classifier.weight`, `classifier.bias`).
pub fn densenet_with_head(cfg: &DenseNetConfig, head: Head, seed: u64) -> Result<ModelProto, GraphError> {
    if cfg.growth == 0 || cfg.block_config.is_empty() || cfg.init_features == 0 || cfg.num_classes < 2 {
        return Err(GraphError::Config(format!(
            "DenseNet config needs growth > 0, at least one block, init_features > 0 and >= 2 classes (got {cfg:?})"
        )));
    }
    if !(cfg.compression > 0.0 && cfg.compression <= 1.0 && (0.0..1.0).contains(&cfg.dropout)) {
        return Err(GraphError::Config(format!(
            "DenseNet config: compression must be in (0, 1] and dropout in [0, 1) (got {} and {})",
            cfg.compression, cfg.dropout
        )));
    }
    let min_side = match cfg.stem {
        Stem::Cifar => 1 << (cfg.block_config.len() - 1),
        Stem::ImageNet => 4 << (cfg.block_config.len() - 1),
    };
    if cfg.image_size < min_side {
        return Err(GraphError::Config(format!(
            "image_size {} is too small for {} blocks with this stem (at least {min_side})",
            cfg.image_size,
            cfg.block_config.len()
        )));
    }
    let mut net = Net::new("densenet", seed);
    let images = net.images(cfg.image_size)?;
    let mut c = cfg.init_features;
    let mut x = match cfg.stem {
        Stem::Cifar => net.conv(&images, "features.conv0", ConvShape::new(3, c, 3, 1, 1), Fan::In)?,
        Stem::ImageNet => {
            let y = net.conv(&images, "features.conv0", ConvShape::new(3, c, 7, 2, 3), Fan::In)?;
            let y = net.norm_relu(&y, "features.norm0", c)?;
            net.g.op(
                "MaxPool",
                &[&y],
                &[
                    ("kernel_shape", Attr::Ints(vec![3, 3])),
                    ("strides", Attr::Ints(vec![2, 2])),
                    ("pads", Attr::Ints(vec![1; 4])),
                ],
            )?
        }
    };
    for (bi, &layers) in cfg.block_config.iter().enumerate() {
        for li in 0..layers {
            let p = format!("features.denseblock{}.denselayer{}", bi + 1, li + 1);
            let h = net.norm_relu(&x, &format!("{p}.norm1"), c)?;
            let h = if cfg.bn_size > 0 {
                let mid = cfg.bn_size * cfg.growth;
                let h = net.conv(&h, &format!("{p}.conv1"), ConvShape::new(c, mid, 1, 1, 0), Fan::In)?;
                let h = net.norm_relu(&h, &format!("{p}.norm2"), mid)?;
                net.conv(&h, &format!("{p}.conv2"), ConvShape::new(mid, cfg.growth, 3, 1, 1), Fan::In)?
            } else {
                net.conv(&h, &format!("{p}.conv1"), ConvShape::new(c, cfg.growth, 3, 1, 1), Fan::In)?
            };
            let h = if cfg.dropout > 0.0 {
                let ratio = net.g.constant(&Tensor::F32 { dims: vec![], data: vec![cfg.dropout] });
                net.g.op("Dropout", &[&h, &ratio], &[])?
            } else {
                h
            };
            x = net.g.op("Concat", &[&x, &h], &[("axis", Attr::Int(1))])?;
            c += cfg.growth;
        }
        if bi + 1 < cfg.block_config.len() {
            let p = format!("features.transition{}", bi + 1);
            let out = ((c as f32) * cfg.compression).floor().max(1.0) as usize;
            let h = net.norm_relu(&x, &format!("{p}.norm"), c)?;
            let h = net.conv(&h, &format!("{p}.conv"), ConvShape::new(c, out, 1, 1, 0), Fan::In)?;
            x = net.g.op(
                "AveragePool",
                &[&h],
                &[("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))],
            )?;
            c = out;
        }
    }
    let h = net.norm_relu(&x, "features.norm5", c)?;
    let h = net.pool_flatten(&h)?;
    // PyTorch's nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    let bound = 1.0 / (c as f32).sqrt();
    let k = cfg.num_classes;
    net.head(&h, "classifier", c, k, head, |net| (0..k * c).map(|_| net.rng.random_range(-bound..bound)).collect())
}
