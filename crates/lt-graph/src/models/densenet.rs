//! The DenseNet family as inference models (torchvision-like structure and initializer names).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

use crate::GraphError;
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Attr, Dim, GraphBuilder, Tensor};

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

/// Names accepted by [`preset`].
pub const PRESETS: [&str; 5] =
    ["densenet-tiny", "densenet-bc-40-k12", "densenet-bc-100-k12", "densenet121", "densenet161"];

/// A named configuration with `num_classes` outputs.
pub fn preset(name: &str, num_classes: usize) -> Result<DenseNetConfig, GraphError> {
    if num_classes < 2 {
        return Err(GraphError::Config(format!(
            "{name}: num_classes = {num_classes}; a classifier needs at least 2 classes"
        )));
    }
    let cifar = |growth, blocks: &[usize], init| DenseNetConfig {
        growth,
        block_config: blocks.to_vec(),
        init_features: init,
        bn_size: 4,
        compression: 0.5,
        dropout: 0.0,
        stem: Stem::Cifar,
        num_classes,
        image_size: 32,
    };
    Ok(match name {
        "densenet-tiny" => cifar(8, &[2, 2, 2], 16),
        "densenet-bc-40-k12" => cifar(12, &[6, 6, 6], 24),
        "densenet-bc-100-k12" => cifar(12, &[16, 16, 16], 24),
        "densenet121" => DenseNetConfig { stem: Stem::ImageNet, image_size: 224, ..cifar(32, &[6, 12, 24, 16], 64) },
        "densenet161" => cifar(48, &[6, 12, 36, 24], 96),
        _ => {
            return Err(GraphError::Config(format!(
                "unknown architecture `{name}`; choose one of: {}",
                PRESETS.join(", ")
            )));
        }
    })
}

struct Net<'a> {
    g: GraphBuilder,
    rng: ChaCha8Rng,
    n: &'a str,
}

impl Net<'_> {
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        x: &str,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<String, GraphError> {
        // Kaiming normal, fan_in mode, gain sqrt(2) (torchvision's DenseNet init).
        let std = (2.0 / (cin * k * k) as f64).sqrt();
        let normal = Normal::new(0.0, std).expect("finite std");
        let data: Vec<f32> = (0..cout * cin * k * k).map(|_| self.rng.sample(normal) as f32).collect();
        let w = self.g.initializer(
            &format!("{name}.weight"),
            &Tensor::f32(&[cout as i64, cin as i64, k as i64, k as i64], data),
        )?;
        let (k, s, p) = (k as i64, stride as i64, pad as i64);
        self.g.op(
            "Conv",
            &[x, &w],
            &[
                ("kernel_shape", Attr::Ints(vec![k, k])),
                ("strides", Attr::Ints(vec![s, s])),
                ("pads", Attr::Ints(vec![p; 4])),
            ],
        )
    }

    fn norm_relu(&mut self, x: &str, name: &str, c: usize) -> Result<String, GraphError> {
        let c64 = c as i64;
        let gamma = self.g.initializer(&format!("{name}.weight"), &Tensor::f32(&[c64], vec![1.0; c]))?;
        let beta = self.g.initializer(&format!("{name}.bias"), &Tensor::f32(&[c64], vec![0.0; c]))?;
        let mean = self.g.initializer(&format!("{name}.running_mean"), &Tensor::f32(&[c64], vec![0.0; c]))?;
        let var = self.g.initializer(&format!("{name}.running_var"), &Tensor::f32(&[c64], vec![1.0; c]))?;
        let y = self.g.op(
            "BatchNormalization",
            &[x, &gamma, &beta, &mean, &var],
            &[("epsilon", Attr::Float(1e-5)), ("momentum", Attr::Float(0.9))],
        )?;
        self.g.op("Relu", &[&y], &[])
    }
}

/// Builds the inference model of `cfg`, weights drawn from `seed` (same seed, same bytes).
pub fn densenet(cfg: &DenseNetConfig, seed: u64) -> Result<ModelProto, GraphError> {
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
    let mut net = Net { g: GraphBuilder::new("densenet"), rng: ChaCha8Rng::seed_from_u64(seed), n: "N" };
    let side = cfg.image_size as i64;
    let batch = Dim::Param(net.n.to_string());
    let images = net.g.input_dims(
        "images",
        DataType::Float,
        &[batch.clone(), Dim::Fixed(3), Dim::Fixed(side), Dim::Fixed(side)],
    )?;
    let mut c = cfg.init_features;
    let mut x = match cfg.stem {
        Stem::Cifar => net.conv(&images, "features.conv0", 3, c, 3, 1, 1)?,
        Stem::ImageNet => {
            let y = net.conv(&images, "features.conv0", 3, c, 7, 2, 3)?;
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
                let h = net.conv(&h, &format!("{p}.conv1"), c, mid, 1, 1, 0)?;
                let h = net.norm_relu(&h, &format!("{p}.norm2"), mid)?;
                net.conv(&h, &format!("{p}.conv2"), mid, cfg.growth, 3, 1, 1)?
            } else {
                net.conv(&h, &format!("{p}.conv1"), c, cfg.growth, 3, 1, 1)?
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
            let h = net.conv(&h, &format!("{p}.conv"), c, out, 1, 1, 0)?;
            x = net.g.op(
                "AveragePool",
                &[&h],
                &[("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))],
            )?;
            c = out;
        }
    }
    let h = net.norm_relu(&x, "features.norm5", c)?;
    let h = net.g.op("GlobalAveragePool", &[&h], &[])?;
    let h = net.g.op("Flatten", &[&h], &[("axis", Attr::Int(1))])?;
    // PyTorch's nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    let bound = 1.0 / (c as f32).sqrt();
    let k = cfg.num_classes;
    let wdata: Vec<f32> = (0..k * c).map(|_| net.rng.random_range(-bound..bound)).collect();
    let bdata: Vec<f32> = (0..k).map(|_| net.rng.random_range(-bound..bound)).collect();
    let w = net.g.initializer("classifier.weight", &Tensor::f32(&[k as i64, c as i64], wdata))?;
    let b = net.g.initializer("classifier.bias", &Tensor::f32(&[k as i64], bdata))?;
    let logits = net.g.op("Gemm", &[&h, &w, &b], &[("transB", Attr::Int(1))])?;
    net.g.output_dims(&logits, "logits", DataType::Float, &[batch, Dim::Fixed(k as i64)])?;
    Ok(net.g.finish())
}

/// Number of f32 values in the model's initializers (its parameters plus BN statistics).
pub fn initializer_count(model: &ModelProto) -> usize {
    model.graph.as_ref().map_or(0, |g| g.initializer.iter().map(|t| t.dims.iter().product::<i64>() as usize).sum())
}
