//! ResNets as inference models:
//! - the CIFAR ResNets of He et al. 2016 §4.2 (6n+2 layers) with LDAM-DRW's `resnet_cifar.py`
//!   structure, names (`conv1`, `bn1`, `layer1.0.conv1`, ..., `layerS.B.shortcut.{0,1}` for
//!   option B, `linear`) and init (Kaiming normal, fan_in, for convs and the linear weight);
//! - torchvision's ImageNet ResNets and ResNeXts (`conv1`, `bn1`, `layer1.0.conv1`, ...,
//!   `layerS.0.downsample.{0,1}`, `fc`) with its init (Kaiming normal, fan_out, for convs;
//!   nn.Linear's default for `fc`).

use rand::Rng;

use super::{ConvShape, Fan, Head, Net};
use crate::GraphError;
use crate::onnx::proto::ModelProto;
use crate::onnx::{Attr, Tensor};

/// The shortcut of a CIFAR ResNet block whose shape changes (He et al. 2016 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Parameter-free: every second pixel (`x[:, :, ::2, ::2]`, a strided Slice) with the new
    /// channels zero-padded on both sides (a constant Pad), as LDAM-DRW's LambdaLayer.
    A,
    /// A 1x1 strided conv + BatchNorm (`shortcut.0`, `shortcut.1`).
    B,
}

/// A CIFAR ResNet: a 3x3 stem to `width` channels, three stages of `blocks_per_stage`
/// BasicBlocks with `width`, 2·`width` and 4·`width` channels (stride 2 at stages 2 and 3),
/// global average pooling and the head.
#[derive(Clone, Debug, PartialEq)]
pub struct CifarResNetConfig {
    /// n of the 6n+2 layers (5 for ResNet-32).
    pub blocks_per_stage: usize,
    pub shortcut: Shortcut,
    /// Channels of the first stage (16 in the papers).
    pub width: usize,
    pub num_classes: usize,
    /// Square input side (32 for CIFAR).
    pub image_size: usize,
}

/// torchvision's residual blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 convs (ResNet-10/18/34), expansion 1.
    Basic,
    /// 1x1, 3x3 (grouped for ResNeXt, carries the stride), 1x1 to 4x (ResNet-50), expansion 4.
    Bottleneck,
}

/// An ImageNet ResNet: 7x7/2 stem conv to 64 channels, BN, ReLU, 3x3/2 max-pool, four stages
/// of `layers` blocks (64, 128, 256, 512 planes; stride 2 from the second stage), global
/// average pooling and the head.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    pub block: Block,
    pub layers: [usize; 4],
    /// Groups of the Bottleneck's 3x3 conv (32 for ResNeXt-50 32x4d).
    pub groups: usize,
    /// Channels per group at 64 planes (4 for ResNeXt-50 32x4d; 64 for ResNets).
    pub width_per_group: usize,
    pub num_classes: usize,
    /// Square input side (224 for ImageNet-like data).
    pub image_size: usize,
}

/// Builds the CIFAR ResNet of `cfg` with `head`, weights drawn from `seed`.
pub fn cifar_resnet(cfg: &CifarResNetConfig, head: Head, seed: u64) -> Result<ModelProto, GraphError> {
    if cfg.blocks_per_stage == 0 || cfg.width < 2 || cfg.num_classes < 2 || cfg.image_size < 4 {
        return Err(GraphError::Config(format!(
            "CIFAR ResNet config needs at least one block per stage, width >= 2, >= 2 classes and images of side >= 4 (got {cfg:?})"
        )));
    }
    let mut net = Net::new("resnet", seed);
    let images = net.images(cfg.image_size)?;
    let w = cfg.width;
    let x = net.conv(&images, "conv1", ConvShape::new(3, w, 3, 1, 1), Fan::In)?;
    let mut x = net.norm_relu(&x, "bn1", w)?;
    let mut c = w;
    for stage in 0..3 {
        let planes = w << stage;
        for b in 0..cfg.blocks_per_stage {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", stage + 1);
            let h = net.conv(&x, &format!("{p}.conv1"), ConvShape::new(c, planes, 3, stride, 1), Fan::In)?;
            let h = net.norm_relu(&h, &format!("{p}.bn1"), planes)?;
            let h = net.conv(&h, &format!("{p}.conv2"), ConvShape::new(planes, planes, 3, 1, 1), Fan::In)?;
            let h = net.norm(&h, &format!("{p}.bn2"), planes)?;
            let short = if stride == 1 && c == planes {
                x
            } else {
                match cfg.shortcut {
                    Shortcut::A => option_a(&mut net, &x, c, planes, stride)?,
                    Shortcut::B => {
                        let s =
                            net.conv(&x, &format!("{p}.shortcut.0"), ConvShape::new(c, planes, 1, stride, 0), Fan::In)?;
                        net.norm(&s, &format!("{p}.shortcut.1"), planes)?
                    }
                }
            };
            let sum = net.g.op("Add", &[&h, &short], &[])?;
            x = net.relu(&sum)?;
            c = planes;
        }
    }
    let h = net.pool_flatten(&x)?;
    let k = cfg.num_classes;
    net.head(&h, "linear", c, k, head, |net| net.normal(k * c, (2.0 / c as f64).sqrt()))
}

/// Option A: `x[:, :, ::s, ::s]` with the missing channels zero-padded, half before and half
/// after (LDAM-DRW pads `planes // 4` on each side of `planes / 2`).
fn option_a(net: &mut Net, x: &str, cin: usize, planes: usize, stride: usize) -> Result<String, GraphError> {
    let sub = if stride > 1 {
        let s = stride as i64;
        let starts = net.g.constant(&Tensor::i64(&[2], vec![0, 0]));
        let ends = net.g.constant(&Tensor::i64(&[2], vec![i64::MAX, i64::MAX]));
        let axes = net.g.constant(&Tensor::i64(&[2], vec![2, 3]));
        let steps = net.g.constant(&Tensor::i64(&[2], vec![s, s]));
        net.g.op("Slice", &[x, &starts, &ends, &axes, &steps], &[])?
    } else {
        x.to_string()
    };
    if planes == cin {
        return Ok(sub);
    }
    if planes < cin {
        return Err(GraphError::Config(format!("option-A shortcut from {cin} to fewer ({planes}) channels")));
    }
    let before = ((planes - cin) / 2) as i64;
    let after = (planes - cin) as i64 - before;
    let pads = net.g.constant(&Tensor::i64(&[8], vec![0, before, 0, 0, 0, after, 0, 0]));
    net.g.op("Pad", &[&sub, &pads], &[])
}

/// Builds the ImageNet ResNet/ResNeXt of `cfg` with `head`, weights drawn from `seed`.
pub fn resnet(cfg: &ResNetConfig, head: Head, seed: u64) -> Result<ModelProto, GraphError> {
    if cfg.layers.contains(&0) || cfg.groups == 0 || cfg.width_per_group == 0 || cfg.num_classes < 2 {
        return Err(GraphError::Config(format!(
            "ResNet config needs at least one block per stage, groups and width per group > 0 and >= 2 classes (got {cfg:?})"
        )));
    }
    if cfg.image_size < 32 {
        return Err(GraphError::Config(format!(
            "image_size {} is too small for an ImageNet-stem ResNet (it downsamples by 32)",
            cfg.image_size
        )));
    }
    if cfg.block == Block::Basic && (cfg.groups != 1 || cfg.width_per_group != 64) {
        return Err(GraphError::Config("BasicBlock supports only groups = 1 and width_per_group = 64".into()));
    }
    let mut net = Net::new("resnet", seed);
    let images = net.images(cfg.image_size)?;
    let x = net.conv(&images, "conv1", ConvShape::new(3, 64, 7, 2, 3), Fan::Out)?;
    let x = net.norm_relu(&x, "bn1", 64)?;
    let mut x = net.g.op(
        "MaxPool",
        &[&x],
        &[
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1; 4])),
        ],
    )?;
    let expansion = if cfg.block == Block::Basic { 1 } else { 4 };
    let mut c = 64;
    for (stage, &blocks) in cfg.layers.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", stage + 1);
            let h = match cfg.block {
                Block::Basic => {
                    let h = net.conv(&x, &format!("{p}.conv1"), ConvShape::new(c, planes, 3, stride, 1), Fan::Out)?;
                    let h = net.norm_relu(&h, &format!("{p}.bn1"), planes)?;
                    let h = net.conv(&h, &format!("{p}.conv2"), ConvShape::new(planes, planes, 3, 1, 1), Fan::Out)?;
                    net.norm(&h, &format!("{p}.bn2"), planes)?
                }
                Block::Bottleneck => {
                    let width = planes * cfg.width_per_group / 64 * cfg.groups;
                    let h = net.conv(&x, &format!("{p}.conv1"), ConvShape::new(c, width, 1, 1, 0), Fan::Out)?;
                    let h = net.norm_relu(&h, &format!("{p}.bn1"), width)?;
                    let grouped = ConvShape { group: cfg.groups, ..ConvShape::new(width, width, 3, stride, 1) };
                    let h = net.conv(&h, &format!("{p}.conv2"), grouped, Fan::Out)?;
                    let h = net.norm_relu(&h, &format!("{p}.bn2"), width)?;
                    let h =
                        net.conv(&h, &format!("{p}.conv3"), ConvShape::new(width, planes * 4, 1, 1, 0), Fan::Out)?;
                    net.norm(&h, &format!("{p}.bn3"), planes * 4)?
                }
            };
            let out = planes * expansion;
            let short = if stride != 1 || c != out {
                let s = net.conv(&x, &format!("{p}.downsample.0"), ConvShape::new(c, out, 1, stride, 0), Fan::Out)?;
                net.norm(&s, &format!("{p}.downsample.1"), out)?
            } else {
                x
            };
            let sum = net.g.op("Add", &[&h, &short], &[])?;
            x = net.relu(&sum)?;
            c = out;
        }
    }
    let h = net.pool_flatten(&x)?;
    let k = cfg.num_classes;
    // nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let bound = 1.0 / (c as f32).sqrt();
    net.head(&h, "fc", c, k, head, |net| (0..k * c).map(|_| net.rng.random_range(-bound..bound)).collect())
}
