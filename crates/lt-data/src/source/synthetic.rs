//! A procedural 10-class RGB 32x32 data set.
//!
//! Classes differ in shape (disk, ring, square, frame, triangle, cross) and texture (plain,
//! stripes, checks); every image draws a random position, scale, tilt, light foreground and
//! dark background colour, background gradient and noise level, so a classifier must learn shapes
//! and textures rather than colours or positions. Image `i` of a split has label `i % 10` and
//! depends only on (seed, split, i): generation is parallel and deterministic.

use rand::Rng;
use rayon::prelude::*;

use super::{Dataset, Split};
use crate::error::DataError;
use crate::rng;

/// The class names, in label order.
pub const NAMES: [&str; 10] = [
    "disk",
    "ring",
    "square",
    "frame",
    "triangle",
    "cross",
    "striped-disk",
    "checkered-disk",
    "striped-square",
    "checkered-square",
];

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;

/// Bytes of one image.
pub const IMAGE_BYTES: u64 = (3 * PLANE) as u64;

/// Check that `per_class` training and `test_per_class` test images per class fit in
/// `max_bytes` of memory (and the u32 indices of manifests), before anything is allocated.
pub fn check_size(per_class: u64, test_per_class: u64, max_bytes: u64) -> Result<(), DataError> {
    let classes = NAMES.len() as u64;
    let images = per_class.checked_add(test_per_class).and_then(|n| n.checked_mul(classes));
    let bytes = images.and_then(|n| n.checked_mul(IMAGE_BYTES));
    let spec = format!("synthetic:{per_class}");
    if bytes.is_some_and(|b| b <= max_bytes) {
        if per_class * classes > u64::from(u32::MAX) {
            return Err(DataError::Source {
                spec,
                message: format!(
                    "{per_class} x {classes} training images: more than {} (manifests index them as u32)",
                    u32::MAX
                ),
            });
        }
        return Ok(());
    }
    let need = match bytes {
        Some(b) => format!("{b} bytes"),
        None => "more bytes than a u64 holds".into(),
    };
    Err(DataError::Source {
        spec,
        message: format!(
            "{per_class} training + {test_per_class} test images per class (--test-per-class) x {classes} classes x \
             {IMAGE_BYTES} bytes need {need}, over the limit of {max_bytes} bytes (--max-source-bytes); lower the \
             counts or raise the limit"
        ),
    })
}

/// Generate `per_class` training and `test_per_class` test images per class.
///
/// Allocates the whole set: call [`check_size`] first on counts from a user.
pub fn generate(per_class: u64, test_per_class: u64, seed: u64) -> Dataset {
    let (train, test) = rayon::join(
        || split(per_class as usize * 10, seed, "synthetic-train"),
        || split(test_per_class as usize * 10, seed, "synthetic-test"),
    );
    Dataset { class_names: NAMES.iter().map(|s| s.to_string()).collect(), image_shape: [3, 32, 32], train, test }
}

fn split(n: usize, seed: u64, purpose: &str) -> Split {
    let mut images = vec![0u8; n * 3 * PLANE];
    images.par_chunks_mut(3 * PLANE).enumerate().for_each(|(i, img)| draw(img, (i % 10) as u8, seed, purpose, i));
    Split { labels: (0..n).map(|i| (i % 10) as u16).collect(), images }
}

/// A fast per-pixel noise source (xorshift64*), seeded from the image's ChaCha stream.
struct Fast(u64);

impl Fast {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// floor() without a libm call (the x86-64 baseline has no SSE4.1 `roundss`).
#[inline]
fn floor_i32(x: f32) -> i32 {
    let t = x as i32;
    if (t as f32) > x { t - 1 } else { t }
}

fn colour(rng: &mut impl Rng, range: std::ops::Range<f32>) -> [f32; 3] {
    [0; 3].map(|_| rng.random_range(range.clone()))
}

fn draw(img: &mut [u8], class: u8, seed: u64, purpose: &str, i: usize) {
    let mut r = rng::stream(seed, purpose, i as u64);
    // A dark background and a light foreground, each of a random colour: the shape is the
    // bright region whatever the colours (learnable by a small CNN in the demo's budget).
    let bg = colour(&mut r, 0.0..110.0);
    let fg = colour(&mut r, 145.0..255.0);
    // Second texture colour: the foreground moved toward the background.
    let mix: f32 = r.random_range(0.35..0.6);
    let fg2 = [0, 1, 2].map(|c| fg[c] * (1.0 - mix) + bg[c] * mix);
    let scale: f32 = r.random_range(9.5..13.0);
    let margin = scale * 0.6;
    let cx: f32 = r.random_range(margin..SIDE as f32 - margin);
    let cy: f32 = r.random_range(margin..SIDE as f32 - margin);
    // Tilted, not spun: a square stays a square, not a diamond (learnable by a small CNN in
    // the demo's budget).
    let angle: f32 = r.random_range(-0.2..0.2);
    let (sin, cos) = angle.sin_cos();
    let period: f32 = r.random_range(0.36..0.46); // texture period, in units of the scale
    let gx: f32 = r.random_range(-1.0..1.0);
    let gy: f32 = r.random_range(-1.0..1.0);
    let noise: f32 = r.random_range(2.0..8.0);
    let mut fast = Fast(r.random::<u64>() | 1);
    let inv = 1.0 / scale;
    let tex_k = 1.0 / period;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let dx = (x as f32 + 0.5 - cx) * inv;
            let dy = (y as f32 + 0.5 - cy) * inv;
            let u = dx * cos - dy * sin;
            let v = dx * sin + dy * cos;
            let rr = u * u + v * v;
            let box_ = u.abs().max(v.abs());
            let textured = class >= 6;
            let (tu, tv) = if textured { (floor_i32(u * tex_k), floor_i32(v * tex_k)) } else { (0, 0) };
            let stripes = tu & 1 == 0;
            let checks = (tu + tv) & 1 == 0;
            // 0: background, 1: foreground, 2: second texture colour
            let which = match class {
                0 => u8::from(rr < 1.0),
                1 => u8::from((0.36..1.0).contains(&rr)),
                2 => u8::from(box_ < 0.8),
                3 => u8::from((0.5..0.8).contains(&box_)),
                4 => u8::from(v > -0.55 && v < 0.8 - 0.0 && 1.732 * u.abs() < (0.8 - v) * 0.9),
                5 => u8::from((u.abs() < 0.28 && v.abs() < 0.95) || (v.abs() < 0.28 && u.abs() < 0.95)),
                6 => (rr < 1.0) as u8 * if stripes { 1 } else { 2 },
                7 => (rr < 1.0) as u8 * if checks { 1 } else { 2 },
                8 => (box_ < 0.8) as u8 * if stripes { 1 } else { 2 },
                _ => (box_ < 0.8) as u8 * if checks { 1 } else { 2 },
            };
            let base = match which {
                0 => &bg,
                1 => &fg,
                _ => &fg2,
            };
            let shade = gx * (x as f32 - 16.0) + gy * (y as f32 - 16.0);
            let bits = fast.next();
            let p = y * SIDE + x;
            for c in 0..3 {
                // Triangular noise from two 10-bit uniforms, in [-noise, noise].
                let a = ((bits >> (c * 20)) & 1023) as f32;
                let b = ((bits >> (c * 20 + 10)) & 1023) as f32;
                let n = (a + b - 1023.0) * (noise / 1023.0);
                let value = base[c] + if which == 0 { shade } else { 0.0 } + n;
                img[c * PLANE + p] = value.clamp(0.0, 255.0) as u8;
            }
        }
    }
}
