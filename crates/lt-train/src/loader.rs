//! The batch loader: epoch order, augmentation, normalisation, background prefetch.
//!
//! Determinism: the order of an epoch is a function of (seed, epoch), and the augmentation of
//! the image at position p of epoch e a function of (seed, e, p) alone, so results do not
//! depend on how rayon splits the work or on where a resumed run starts.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::Split;

pub use lt_format::run::Normalization;
pub use lt_format::vocab::Augment;

/// Per-channel mean and (population) std of images scaled to [0, 1], over the given images of
/// a split.
pub trait NormalizationOf {
    fn of(split: &Split, indices: &[u32], shape: [usize; 3]) -> Self;
}

impl NormalizationOf for Normalization {
    fn of(split: &Split, indices: &[u32], shape: [usize; 3]) -> Self {
        let [c, h, w] = shape;
        let plane = h * w;
        let image_len = c * plane;
        let (sum, sq) = indices
            .par_iter()
            .fold(
                || (vec![0f64; c], vec![0f64; c]),
                |(mut sum, mut sq), &i| {
                    let img = &split.images[i as usize * image_len..(i as usize + 1) * image_len];
                    for ch in 0..c {
                        for &b in &img[ch * plane..(ch + 1) * plane] {
                            let v = b as f64 / 255.0;
                            sum[ch] += v;
                            sq[ch] += v * v;
                        }
                    }
                    (sum, sq)
                },
            )
            .reduce(
                || (vec![0f64; c], vec![0f64; c]),
                |(mut a, mut b), (c2, d)| {
                    a.iter_mut().zip(&c2).for_each(|(x, y)| *x += y);
                    b.iter_mut().zip(&d).for_each(|(x, y)| *x += y);
                    (a, b)
                },
            );
        let n = (indices.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(0.0)).sqrt().max(1e-6) as f32).collect();
        Normalization { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }
}

/// A batch ready for the training graph.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub labels: Vec<i64>,
    /// `labels.len() · C·H·W` normalised f32 values, NCHW.
    pub images: Vec<f32>,
    /// Mixup / CutMix partner labels and λ (`crate::mix`); None for a plain batch.
    pub mix: Option<crate::mix::Mix>,
}

/// The order in which an epoch visits training images.
///
/// `base` is the epoch's list (the subset, or a manifest's epoch); it is shuffled with a
/// (seed, epoch) RNG when `shuffle`, and sorted into index order otherwise (so `--no-shuffle`
/// visits images in index order whatever the manifest did).
pub fn epoch_order(base: &[u32], seed: u64, epoch: usize, shuffle: bool) -> Vec<u32> {
    let mut order = base.to_vec();
    if shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x5348_5546, epoch as u64, 0));
        order.shuffle(&mut rng);
    } else {
        order.sort_unstable();
    }
    order
}

/// A stable 64-bit mix of a few integers (SplitMix64 finaliser), used to derive per-item seeds.
pub fn mix(a: u64, b: u64, c: u64, d: u64) -> u64 {
    use lt_format::hash::splitmix64;
    splitmix64(splitmix64(a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47)))
}

/// Everything needed to turn index lists into batches.
#[derive(Debug, Clone)]
pub struct BatchMaker {
    pub split: Arc<Split>,
    pub shape: [usize; 3],
    pub norm: Normalization,
    pub augment: Augment,
    /// RandAugment's N and M, Cutout's size.
    pub params: crate::augment::Params,
    pub seed: u64,
}

impl BatchMaker {
    /// Builds the batch of `indices`, the images at positions `start..` of epoch `epoch`.
    pub fn make(&self, epoch: usize, start: usize, indices: &[u32]) -> Batch {
        let [c, h, w] = self.shape;
        let image_len = c * h * w;
        let luts = lookup_tables(&self.norm);
        let mut images = vec![0f32; indices.len() * image_len];
        images.par_chunks_mut(image_len).zip(indices.par_iter()).enumerate().for_each(|(k, (out, &idx))| {
            let src = &self.split.images[idx as usize * image_len..(idx as usize + 1) * image_len];
            // One RNG per image: crop+flip's draws first (the same for every policy), then
            // the policy's, then Cutout's.
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, epoch as u64, (start + k) as u64, 0x4155_4720));
            let (dy, dx, flip) = match self.augment {
                Augment::None => (0i64, 0i64, false),
                _ => (rng.random_range(-4..=4), rng.random_range(-4..=4), rng.random_bool(0.5)),
            };
            if matches!(self.augment, Augment::None | Augment::CropFlip) {
                write_image(out, src, [c, h, w], dy, dx, flip, &luts);
            } else {
                // The policies act on the cropped, flipped u8 image, as torchvision's
                // RandomCrop, RandomHorizontalFlip, AutoAugment/RandAugment order.
                let mut img = vec![0u8; image_len];
                crate::augment::crop_flip(&mut img, src, [c, h, w], dy, dx, flip);
                if self.augment == Augment::AutoAugment {
                    crate::augment::autoaugment_cifar10(&mut img, [c, h, w], &mut rng);
                } else {
                    let p = &self.params;
                    crate::augment::randaugment(&mut img, [c, h, w], p.randaugment_n, p.randaugment_m, &mut rng);
                }
                write_image(out, &img, [c, h, w], 0, 0, false, &luts);
            }
            if let Some(size) = self.params.cutout {
                crate::augment::cutout(out, [c, h, w], size, &mut rng);
            }
        });
        let labels = indices.iter().map(|&i| self.split.labels[i as usize] as i64).collect();
        Batch { labels, images, mix: None }
    }
}

/// Per channel, the normalised value of each of the 256 pixel values: `(v/255 − mean)/std`,
/// so the per-pixel work is one table look-up (and the values equal the direct formula).
fn lookup_tables(norm: &Normalization) -> Vec<[f32; 256]> {
    norm.mean.iter().zip(&norm.std).map(|(&m, &s)| std::array::from_fn(|v| (v as f32 / 255.0 - m) / s)).collect()
}

/// Writes one normalised image, shifted by (dy, dx) with zero padding (the crop of a padded
/// image) and optionally mirrored. Padding is zero in pixel space, as torchvision pads.
/// Each row is split into the padded ends and the run with source pixels, so the inner loop
/// has no bounds tests.
fn write_image(out: &mut [f32], src: &[u8], [c, h, w]: [usize; 3], dy: i64, dx: i64, flip: bool, luts: &[[f32; 256]]) {
    let plane = h * w;
    let wi = w as i64;
    // Columns x whose source column (flip ? w−1−x : x) + dx lies inside the image.
    let (lo, hi) = if flip { (dx, wi + dx) } else { (-dx, wi - dx) };
    let lo = lo.clamp(0, wi) as usize;
    let hi = (hi.clamp(0, wi) as usize).max(lo);
    for ch in 0..c {
        let lut = &luts[ch];
        let pad = lut[0];
        let src = &src[ch * plane..(ch + 1) * plane];
        let out = &mut out[ch * plane..(ch + 1) * plane];
        for (y, row) in out.chunks_exact_mut(w).enumerate() {
            let sy = y as i64 + dy;
            if sy < 0 || sy >= h as i64 {
                row.fill(pad);
                continue;
            }
            let srow = &src[sy as usize * w..(sy as usize + 1) * w];
            row[..lo].fill(pad);
            row[hi..].fill(pad);
            // lo == hi when the shift moved every source column out of the image.
            if lo < hi && flip {
                // x in lo..hi reads source columns w−1−x+dx, descending.
                let first = (wi - 1 - lo as i64 + dx) as usize;
                for (k, v) in row[lo..hi].iter_mut().enumerate() {
                    *v = lut[srow[first - k] as usize];
                }
            } else if lo < hi {
                let first = (lo as i64 + dx) as usize;
                for (v, &p) in row[lo..hi].iter_mut().zip(&srow[first..]) {
                    *v = lut[p as usize];
                }
            }
        }
    }
}

/// Produces the full batches of one epoch in a background thread, two batches ahead, so the
/// session never waits for augmentation. The last partial batch is dropped: the training
/// graph has a static batch size.
#[derive(Debug)]
pub struct Prefetcher {
    rx: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    pub fn start(maker: BatchMaker, epoch: usize, order: Vec<u32>, batch_size: usize) -> Self {
        Self::start_mixed(maker, None, epoch, order, batch_size)
    }

    /// As [`Prefetcher::start`], each batch then mixed by `mixer` (mixup / CutMix).
    pub fn start_mixed(
        maker: BatchMaker,
        mixer: Option<crate::mix::Mixer>,
        epoch: usize,
        order: Vec<u32>,
        batch_size: usize,
    ) -> Self {
        let (tx, rx): (SyncSender<Batch>, Receiver<Batch>) = sync_channel(2);
        let handle = std::thread::spawn(move || {
            for (b, chunk) in order.chunks_exact(batch_size).enumerate() {
                let mut batch = maker.make(epoch, b * batch_size, chunk);
                if let Some(m) = &mixer {
                    batch.mix = m.apply(epoch, b * batch_size, maker.shape, &mut batch.images, &batch.labels);
                }
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
        Prefetcher { rx, handle: Some(handle) }
    }
}

impl Iterator for Prefetcher {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    // A panic in the producer is a bug: surface it rather than end the epoch early.
                    if let Err(p) = h.join() {
                        std::panic::resume_unwind(p);
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct per-pixel definition the fast writer must equal.
    fn naive(src: &[u8], [c, h, w]: [usize; 3], dy: i64, dx: i64, flip: bool, norm: &Normalization) -> Vec<f32> {
        let mut out = vec![0f32; c * h * w];
        for ch in 0..c {
            let (m, s) = (norm.mean[ch], norm.std[ch]);
            for y in 0..h {
                for x in 0..w {
                    let sy = y as i64 + dy;
                    let sx = (if flip { w - 1 - x } else { x }) as i64 + dx;
                    let inside = sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64;
                    let v = if inside { src[ch * h * w + sy as usize * w + sx as usize] } else { 0 };
                    out[ch * h * w + y * w + x] = (v as f32 / 255.0 - m) / s;
                }
            }
        }
        out
    }

    #[test]
    fn crop_flip_writer_equals_the_direct_definition_for_every_shift() {
        let shape = [3usize, 7, 5];
        let src: Vec<u8> = (0..3 * 7 * 5).map(|i| (i * 37 % 256) as u8).collect();
        let norm = Normalization { mean: vec![0.5, 0.25, 0.1], std: vec![0.2, 0.3, 0.4] };
        let luts = lookup_tables(&norm);
        for dy in -8..=8 {
            for dx in -6..=6 {
                for flip in [false, true] {
                    let mut out = vec![f32::NAN; src.len()];
                    write_image(&mut out, &src, shape, dy, dx, flip, &luts);
                    let want = naive(&src, shape, dy, dx, flip, &norm);
                    assert_eq!(out, want, "dy {dy} dx {dx} flip {flip}");
                }
            }
        }
    }
}
