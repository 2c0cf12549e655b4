//! AutoAugment, RandAugment and Cutout: image operations on one u8 CHW image as the loader
//! stores it (channel planes of `h·w` bytes).
//!
//! The operations follow torchvision's tensor implementations
//! (`torchvision.transforms.autoaugment._apply_op` and `_functional_tensor`, v0.29) on uint8
//! tensors: the same f32 arithmetic, the same truncation to u8 (`.to(torch.uint8)`), nearest
//! sampling with zero fill for the geometric operations (AutoAugment's and RandAugment's
//! defaults), and the same magnitude tables. `tests/it/augment.rs` pins outputs produced by
//! torchvision (`scripts/augment-golden.py`). One deviation is possible: a geometric operation
//! whose source coordinate lies exactly half-way between two pixels may round the other way
//! (torch's grid is a batched matrix product whose summation order is the BLAS library's).
//!
//! The random choices (sub-policy, probabilities, signs, operations, the Cutout centre) are
//! drawn from the caller's RNG, which the loader seeds by (seed, epoch, position), so they are
//! not torchvision's draws but are reproducible and independent of threading.

use rand::Rng;

/// Declares [`Op`] and [`ALL_OPS`] from one list.
macro_rules! image_ops {
    ($($op:ident),* $(,)?) => {
        /// One image operation of AutoAugment / RandAugment.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($op),*
        }

        /// Every operation, in the order of the golden file's names.
        pub const ALL_OPS: &[Op] = &[$(Op::$op),*];
    };
}

image_ops![
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
];

use Op::*;

/// RandAugment's operations (torchvision's `RandAugment._augmentation_space`, in its order):
/// every operation but the last, Invert (only AutoAugment's policy uses it).
pub const RANDAUGMENT_OPS: &[Op] = match ALL_OPS.split_last() {
    Some((Invert, rest)) => rest,
    _ => panic!("ALL_OPS must end with Invert"),
};

/// RandAugment's magnitude bins (torchvision's `num_magnitude_bins`): M is 0 to 30.
pub const RANDAUGMENT_BINS: usize = 31;
/// AutoAugment's magnitude bins.
pub const AUTOAUGMENT_BINS: usize = 10;

impl Op {
    /// torchvision's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Identity => "Identity",
            ShearX => "ShearX",
            ShearY => "ShearY",
            TranslateX => "TranslateX",
            TranslateY => "TranslateY",
            Rotate => "Rotate",
            Brightness => "Brightness",
            Color => "Color",
            Contrast => "Contrast",
            Sharpness => "Sharpness",
            Posterize => "Posterize",
            Solarize => "Solarize",
            AutoContrast => "AutoContrast",
            Equalize => "Equalize",
            Invert => "Invert",
        }
    }

    /// The operation of a torchvision name.
    pub fn from_name(name: &str) -> Option<Op> {
        ALL_OPS.iter().copied().find(|o| o.name() == name)
    }
}

/// `torch.linspace(start, end, steps)[i]` in f32 (ATen's formula: from the start for the first
/// half, from the end for the second).
fn linspace(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    if steps == 1 {
        return start;
    }
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 { start + step * i as f32 } else { end - step * (steps - 1 - i) as f32 }
}

/// The magnitude of `op` at `bin` of `bins` for an `h`×`w` image, and whether it takes a
/// random sign: torchvision's `_augmentation_space` (shear 0–0.3, translate 0–150/331 of the
/// side, rotate 0–30°, the enhancements 0–0.9, posterize 8–4 bits, solarize 255–0).
pub fn magnitude(op: Op, bin: usize, bins: usize, [h, w]: [usize; 2]) -> (f64, bool) {
    let lin = |end: f64| linspace(0.0, end as f32, bins, bin) as f64;
    match op {
        ShearX | ShearY => (lin(0.3), true),
        TranslateX => (lin(150.0 / 331.0 * w as f64), true),
        TranslateY => (lin(150.0 / 331.0 * h as f64), true),
        Rotate => (lin(30.0), true),
        Brightness | Color | Contrast | Sharpness => (lin(0.9), true),
        Posterize => {
            let q = bin as f32 / ((bins - 1) as f32 / 4.0);
            (8.0 - q.round_ties_even() as f64, false)
        }
        Solarize => (linspace(255.0, 0.0, bins, bin) as f64, false),
        Identity | AutoContrast | Equalize | Invert => (0.0, false),
    }
}

/// Applies `op` with `magnitude` (signed, as torchvision's `_apply_op` receives it) to `img`,
/// `shape` = [c, h, w].
pub fn apply(op: Op, magnitude: f64, img: &mut [u8], shape: [usize; 3]) {
    let [c, h, w] = shape;
    debug_assert_eq!(img.len(), c * h * w);
    let (hf, wf) = (h as f64, w as f64);
    match op {
        Identity => {}
        ShearX => {
            let m = inverse_affine([-wf * 0.5, -hf * 0.5], 0.0, [0.0, 0.0], [to_degrees(magnitude.atan()), 0.0]);
            affine(img, shape, m)
        }
        ShearY => {
            let m = inverse_affine([-wf * 0.5, -hf * 0.5], 0.0, [0.0, 0.0], [0.0, to_degrees(magnitude.atan())]);
            affine(img, shape, m)
        }
        TranslateX => affine(img, shape, inverse_affine([0.0, 0.0], 0.0, [magnitude.trunc(), 0.0], [0.0, 0.0])),
        TranslateY => affine(img, shape, inverse_affine([0.0, 0.0], 0.0, [0.0, magnitude.trunc()], [0.0, 0.0])),
        // F.rotate passes −angle to the matrix (counter-clockwise for positive angles).
        Rotate => affine(img, shape, inverse_affine([0.0, 0.0], -magnitude, [0.0, 0.0], [0.0, 0.0])),
        Brightness => {
            let (r, s) = ratios(1.0 + magnitude);
            for v in img.iter_mut() {
                *v = to_u8(r * *v as f32 + s * 0.0);
            }
        }
        Color => {
            if c != 3 {
                return;
            }
            let gray = grayscale(img, h * w);
            let (r, s) = ratios(1.0 + magnitude);
            for plane in img.chunks_exact_mut(h * w) {
                for (v, &g) in plane.iter_mut().zip(&gray) {
                    *v = to_u8(r * *v as f32 + s * g as f32);
                }
            }
        }
        Contrast => {
            let sum: u64 = if c == 3 {
                grayscale(img, h * w).iter().map(|&g| g as u64).sum()
            } else {
                img.iter().map(|&v| v as u64).sum()
            };
            let n = if c == 3 { h * w } else { img.len() };
            let mean = sum as f32 / n.max(1) as f32;
            let (r, s) = ratios(1.0 + magnitude);
            let m = s * mean;
            for v in img.iter_mut() {
                *v = to_u8(r * *v as f32 + m);
            }
        }
        Sharpness => sharpness(img, shape, 1.0 + magnitude),
        Posterize => {
            let bits = magnitude as i64;
            let mask = (-(1i64 << (8 - bits).clamp(0, 8))) as u8;
            img.iter_mut().for_each(|v| *v &= mask);
        }
        Solarize => {
            let t = magnitude as f32;
            img.iter_mut().for_each(|v| {
                if *v as f32 >= t {
                    *v = 255 - *v
                }
            });
        }
        AutoContrast => {
            for plane in img.chunks_exact_mut(h * w) {
                let lo = *plane.iter().min().unwrap_or(&0);
                let hi = *plane.iter().max().unwrap_or(&0);
                if lo == hi {
                    continue;
                }
                let (lo, scale) = (lo as f32, 255.0 / (hi as f32 - lo as f32));
                plane.iter_mut().for_each(|v| *v = to_u8((*v as f32 - lo) * scale));
            }
        }
        Equalize => img.chunks_exact_mut(h * w).for_each(equalize_plane),
        Invert => img.iter_mut().for_each(|v| *v = 255 - *v),
    }
}

/// CPython's `math.degrees` and `math.radians`.
fn to_degrees(x: f64) -> f64 {
    x * (180.0 / std::f64::consts::PI)
}
fn to_radians(x: f64) -> f64 {
    x * (std::f64::consts::PI / 180.0)
}

/// `_blend`'s two factors as the f32 scalars torch multiplies with: `ratio` and `1 − ratio`.
fn ratios(ratio: f64) -> (f32, f32) {
    (ratio as f32, (1.0 - ratio) as f32)
}

/// `.clamp(0, 255).to(torch.uint8)`: clamp, then truncate.
fn to_u8(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// `rgb_to_grayscale` on uint8: `(0.2989 r + 0.587 g + 0.114 b).to(uint8)`, in f32.
fn grayscale(img: &[u8], plane: usize) -> Vec<u8> {
    let (r, rest) = img.split_at(plane);
    let (g, b) = rest.split_at(plane);
    r.iter()
        .zip(g)
        .zip(b)
        .map(|((&r, &g), &b)| to_u8(0.2989f32 * r as f32 + 0.587f32 * g as f32 + 0.114f32 * b as f32))
        .collect()
}

/// `adjust_sharpness`: a blend with the image blurred by [[1,1,1],[1,5,1],[1,1,1]]/13 (rounded
/// to u8) inside a one-pixel border, which keeps its values.
fn sharpness(img: &mut [u8], [_, h, w]: [usize; 3], factor: f64) {
    if h <= 2 || w <= 2 {
        return;
    }
    let (r, s) = ratios(factor);
    for plane in img.chunks_exact_mut(h * w) {
        let mut blurred = plane.to_vec();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let mut sum = 4 * plane[y * w + x] as u32;
                for yy in y - 1..=y + 1 {
                    for xx in x - 1..=x + 1 {
                        sum += plane[yy * w + xx] as u32;
                    }
                }
                // round(sum / 13): sum/13 is never a tie, so f32 convolution rounds the same.
                blurred[y * w + x] = ((2 * sum + 13) / 26) as u8;
            }
        }
        for (v, &d) in plane.iter_mut().zip(&blurred) {
            *v = to_u8(r * *v as f32 + s * d as f32);
        }
    }
}

/// `_scale_channel` of `equalize`: the histogram's cumulative sum in steps of
/// ⌊(pixels except the last non-empty bin's) / 255⌋; unchanged when that step is 0.
fn equalize_plane(plane: &mut [u8]) {
    let mut hist = [0u64; 256];
    plane.iter().for_each(|&v| hist[v as usize] += 1);
    let last = hist.iter().rposition(|&n| n != 0).unwrap_or(0);
    let step = hist[..last].iter().sum::<u64>() / 255;
    if step == 0 {
        return;
    }
    let mut lut = [0u8; 256];
    let mut cum = 0u64;
    for (v, &count) in hist.iter().enumerate().take(255) {
        cum += count;
        lut[v + 1] = ((cum + step / 2) / step).min(255) as u8;
    }
    plane.iter_mut().for_each(|v| *v = lut[*v as usize]);
}

/// torchvision's `_get_inverse_affine_matrix` with scale 1: the map from output to input
/// coordinates (centred pixel coordinates), in f64 as Python computes it.
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let rot = to_radians(angle);
    let sx = to_radians(shear[0]);
    let sy = to_radians(shear[1]);
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// `_FT.affine` with nearest sampling and zero fill: output pixel (x, y) at centred coordinates
/// (x − w/2 + ½, y − h/2 + ½) reads the input at the matrix's image of them, normalised by
/// (w/2, h/2) as `_gen_affine_grid` does, un-normalised as `grid_sample(align_corners=False)`
/// and rounded half to even.
fn affine(img: &mut [u8], [c, h, w]: [usize; 3], m: [f64; 6]) {
    let t: [f32; 6] = m.map(|v| v as f32);
    let (hw, hh) = (0.5 * w as f32, 0.5 * h as f32);
    let rx = [t[0] / hw, t[1] / hw, t[2] / hw];
    let ry = [t[3] / hh, t[4] / hh, t[5] / hh];
    let plane = h * w;
    let mut src_of = vec![usize::MAX; plane];
    for y in 0..h {
        let gy0 = y as f32 - hh + 0.5;
        for x in 0..w {
            let gx0 = x as f32 - hw + 0.5;
            let gx = gx0 * rx[0] + gy0 * rx[1] + rx[2];
            let gy = gx0 * ry[0] + gy0 * ry[1] + ry[2];
            let ix = (((gx + 1.0) * w as f32 - 1.0) / 2.0).round_ties_even();
            let iy = (((gy + 1.0) * h as f32 - 1.0) / 2.0).round_ties_even();
            if ix >= 0.0 && iy >= 0.0 && ix < w as f32 && iy < h as f32 {
                src_of[y * w + x] = iy as usize * w + ix as usize;
            }
        }
    }
    let mut out = vec![0u8; plane];
    for p in img.chunks_exact_mut(plane).take(c) {
        for (o, &s) in out.iter_mut().zip(&src_of) {
            *o = if s == usize::MAX { 0 } else { p[s] };
        }
        p.copy_from_slice(&out);
    }
}

/// One (operation, probability, magnitude bin) of an AutoAugment sub-policy; `None`: an
/// operation without magnitude.
pub type Step = (Op, f64, Option<usize>);

/// AutoAugment's CIFAR-10 policy (Cubuk et al. 2019; torchvision's `AutoAugmentPolicy.CIFAR10`):
/// 25 sub-policies of two steps, magnitude bins of 10.
pub const CIFAR10_POLICY: [[Step; 2]; 25] = [
    [(Invert, 0.1, None), (Contrast, 0.2, Some(6))],
    [(Rotate, 0.7, Some(2)), (TranslateX, 0.3, Some(9))],
    [(Sharpness, 0.8, Some(1)), (Sharpness, 0.9, Some(3))],
    [(ShearY, 0.5, Some(8)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.5, None), (Equalize, 0.9, None)],
    [(ShearY, 0.2, Some(7)), (Posterize, 0.3, Some(7))],
    [(Color, 0.4, Some(3)), (Brightness, 0.6, Some(7))],
    [(Sharpness, 0.3, Some(9)), (Brightness, 0.7, Some(9))],
    [(Equalize, 0.6, None), (Equalize, 0.5, None)],
    [(Contrast, 0.6, Some(7)), (Sharpness, 0.6, Some(5))],
    [(Color, 0.7, Some(7)), (TranslateX, 0.5, Some(8))],
    [(Equalize, 0.3, None), (AutoContrast, 0.4, None)],
    [(TranslateY, 0.4, Some(3)), (Sharpness, 0.2, Some(6))],
    [(Brightness, 0.9, Some(6)), (Color, 0.2, Some(8))],
    [(Solarize, 0.5, Some(2)), (Invert, 0.0, None)],
    [(Equalize, 0.2, None), (AutoContrast, 0.6, None)],
    [(Equalize, 0.2, None), (Equalize, 0.6, None)],
    [(Color, 0.9, Some(9)), (Equalize, 0.6, None)],
    [(AutoContrast, 0.8, None), (Solarize, 0.2, Some(8))],
    [(Brightness, 0.1, Some(3)), (Color, 0.7, Some(0))],
    [(Solarize, 0.4, Some(5)), (AutoContrast, 0.9, None)],
    [(TranslateY, 0.9, Some(9)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.9, None), (Solarize, 0.2, Some(3))],
    [(Equalize, 0.8, None), (Invert, 0.1, None)],
    [(TranslateY, 0.7, Some(9)), (AutoContrast, 0.9, None)],
];

/// AutoAugment with the CIFAR-10 policy, as torchvision's `AutoAugment.forward`: a uniform
/// sub-policy; each step applied when a uniform draw is ≤ its probability, with a random sign
/// for signed operations.
pub fn autoaugment_cifar10(img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
    let policy = &CIFAR10_POLICY[rng.random_range(0..CIFAR10_POLICY.len())];
    let draws: [(f64, bool); 2] = std::array::from_fn(|_| (rng.random::<f64>(), rng.random_bool(0.5)));
    for (&(op, p, bin), (u, negative)) in policy.iter().zip(draws) {
        if u <= p {
            let (mag, signed) = match bin {
                Some(b) => magnitude(op, b, AUTOAUGMENT_BINS, [shape[1], shape[2]]),
                None => (0.0, false),
            };
            apply(op, if signed && negative { -mag } else { mag }, img, shape);
        }
    }
}

/// RandAugment (Cubuk et al. 2020) as torchvision's `RandAugment.forward`: `n` operations drawn
/// uniformly (with repetition) from [`RANDAUGMENT_OPS`], each at magnitude bin `m` of 31, signed
/// operations negated with probability 1/2.
pub fn randaugment(img: &mut [u8], shape: [usize; 3], n: usize, m: usize, rng: &mut impl Rng) {
    for _ in 0..n {
        let op = RANDAUGMENT_OPS[rng.random_range(0..RANDAUGMENT_OPS.len())];
        let (mag, signed) = magnitude(op, m, RANDAUGMENT_BINS, [shape[1], shape[2]]);
        let negative = signed && rng.random_bool(0.5);
        apply(op, if negative { -mag } else { mag }, img, shape);
    }
}

/// Cutout (DeVries & Taylor 2017) as its reference code: a centre (y, x) uniform over the
/// image, the rows y − size/2 .. y + size/2 and columns likewise (integer halves, clipped to
/// the image) set to 0 in the normalised image — the channel mean, since the reference applies
/// it after `Normalize`.
pub fn cutout(out: &mut [f32], [c, h, w]: [usize; 3], size: usize, rng: &mut impl Rng) {
    let cy = rng.random_range(0..h);
    let cx = rng.random_range(0..w);
    let half = size / 2;
    let (y0, y1) = (cy.saturating_sub(half), (cy + half).min(h));
    let (x0, x1) = (cx.saturating_sub(half), (cx + half).min(w));
    for plane in out.chunks_exact_mut(h * w).take(c) {
        for row in plane.chunks_exact_mut(w).take(y1).skip(y0) {
            row[x0..x1].fill(0.0);
        }
    }
}

/// Random crop with zero padding (shift by (dy, dx)) and optional mirror, on u8: the same map
/// as the loader's normalising writer, for the policies that act on the cropped image.
pub fn crop_flip(out: &mut [u8], src: &[u8], [c, h, w]: [usize; 3], dy: i64, dx: i64, flip: bool) {
    let plane = h * w;
    for ch in 0..c {
        for y in 0..h {
            let sy = y as i64 + dy;
            for x in 0..w {
                let sx = (if flip { w - 1 - x } else { x }) as i64 + dx;
                let inside = sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64;
                out[ch * plane + y * w + x] = if inside { src[ch * plane + sy as usize * w + sx as usize] } else { 0 };
            }
        }
    }
}

/// The settings of the policies beyond the [`Augment`](crate::loader::Augment) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Params {
    /// RandAugment's N: operations per image.
    pub randaugment_n: usize,
    /// RandAugment's M: magnitude bin, 0 to 30.
    pub randaugment_m: usize,
    /// Cutout's square side in pixels (any augmentation); `None`: no Cutout.
    pub cutout: Option<usize>,
}

impl Default for Params {
    /// torchvision's RandAugment defaults (N = 2, M = 9), no Cutout.
    fn default() -> Self {
        Params { randaugment_n: 2, randaugment_m: 9, cutout: None }
    }
}

impl Params {
    /// The settings of a training configuration.
    pub fn of(cfg: &lt_format::config::TrainConfig) -> Self {
        Params { randaugment_n: cfg.randaugment_n, randaugment_m: cfg.randaugment_m, cutout: cfg.cutout }
    }
}
