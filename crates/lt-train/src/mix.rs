//! Mixed batches: mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization") and
//! CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
//! Localizable Features"), applied to a finished batch on the host.
//!
//! One draw per batch, as the reference code does (facebookresearch/mixup-cifar10
//! `mixup_data`, clovaai/CutMix-PyTorch `train.py`): a permutation j of the batch and one λ ~
//! Beta(α, α). Mixup makes image n `λ·x_n + (1−λ)·x_j(n)`; CutMix pastes the box of x_j(n)
//! whose sides are `⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋` around a uniform centre (clipped to the image)
//! and sets λ to 1 − (pasted area)/(H·W). The training graph then minimises
//! `λ·L(z, y) + (1−λ)·L(z, y_j)` (lt-graph's `TrainingGraphSpec::mixed_labels`).
//!
//! A batch is mixed with probability `prob`; with both methods on, a mixed batch picks one
//! with equal chance (timm's `Mixup` with `switch_prob` 0.5, batch mode). Determinism: every
//! draw comes from an RNG seeded by (seed, epoch, position of the batch's first image), so a
//! resumed run mixes its batches exactly as the uninterrupted one.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

use crate::loader::mix as mix_seed;

/// The mixing settings of a run (`--mixup`, `--cutmix`, `--mix-prob`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mixer {
    pub mixup: Option<f64>,
    pub cutmix: Option<f64>,
    pub prob: f64,
    pub seed: u64,
}

/// How one batch was mixed: the partner label of each image and the weight λ of the own label.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub labels: Vec<i64>,
    pub lambda: f32,
}

/// What one batch's draw decided (before touching the images).
#[derive(Debug, Clone, PartialEq)]
pub enum Draw {
    /// The batch stays as it is.
    Plain,
    Mixup {
        perm: Vec<usize>,
        lambda: f64,
    },
    /// Rows `y0..y1` and columns `x0..x1` come from the partner; λ is the corrected one.
    Cutmix {
        perm: Vec<usize>,
        lambda: f64,
        y0: usize,
        y1: usize,
        x0: usize,
        x1: usize,
    },
}

impl Mixer {
    /// The settings of a config; `None` when neither method is on.
    pub fn of(cfg: &lt_format::config::TrainConfig) -> Option<Mixer> {
        if cfg.mixup.is_none() && cfg.cutmix.is_none() {
            return None;
        }
        Some(Mixer { mixup: cfg.mixup, cutmix: cfg.cutmix, prob: cfg.mix_prob, seed: cfg.seed })
    }

    /// The draw of the batch of `batch` images starting at position `start` of epoch `epoch`,
    /// for images of `height` × `width`.
    pub fn draw(&self, epoch: usize, start: usize, batch: usize, height: usize, width: usize) -> Draw {
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(self.seed, epoch as u64, start as u64, 0x4d49_5855));
        if rng.random::<f64>() >= self.prob {
            return Draw::Plain;
        }
        let use_cutmix = match (self.mixup, self.cutmix) {
            (Some(_), Some(_)) => rng.random_bool(0.5),
            (None, Some(_)) => true,
            _ => false,
        };
        let alpha = if use_cutmix { self.cutmix } else { self.mixup }.unwrap_or(1.0);
        let lambda = match Beta::new(alpha, alpha) {
            Ok(b) => b.sample(&mut rng),
            Err(_) => 1.0,
        };
        let mut perm: Vec<usize> = (0..batch).collect();
        perm.shuffle(&mut rng);
        if !use_cutmix {
            return Draw::Mixup { perm, lambda };
        }
        let cut = (1.0 - lambda).max(0.0).sqrt();
        let (ch, cw) = ((height as f64 * cut) as usize, (width as f64 * cut) as usize);
        let (cy, cx) = (rng.random_range(0..height), rng.random_range(0..width));
        let y0 = cy.saturating_sub(ch / 2);
        let y1 = (cy + ch / 2).min(height);
        let x0 = cx.saturating_sub(cw / 2);
        let x1 = (cx + cw / 2).min(width);
        let lambda = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (height * width) as f64;
        Draw::Cutmix { perm, lambda, y0, y1, x0, x1 }
    }

    /// Mixes `images` (NCHW, `labels.len()` images of `shape`) in place and returns the partner
    /// labels and λ, or `None` for a batch left plain.
    pub fn apply(
        &self,
        epoch: usize,
        start: usize,
        shape: [usize; 3],
        images: &mut [f32],
        labels: &[i64],
    ) -> Option<Mix> {
        let [c, h, w] = shape;
        let image_len = c * h * w;
        let draw = self.draw(epoch, start, labels.len(), h, w);
        let (perm, lambda) = match &draw {
            Draw::Plain => return None,
            Draw::Mixup { perm, lambda } | Draw::Cutmix { perm, lambda, .. } => (perm, *lambda),
        };
        let original = images.to_vec();
        for (n, out) in images.chunks_exact_mut(image_len).enumerate() {
            let own = &original[n * image_len..(n + 1) * image_len];
            let other = &original[perm[n] * image_len..(perm[n] + 1) * image_len];
            match draw {
                Draw::Mixup { .. } => {
                    let (a, b) = (lambda as f32, (1.0 - lambda) as f32);
                    for ((o, &x), &y) in out.iter_mut().zip(own).zip(other) {
                        *o = a * x + b * y;
                    }
                }
                Draw::Cutmix { y0, y1, x0, x1, .. } => {
                    for ch in 0..c {
                        for y in y0..y1 {
                            let row = ch * h * w + y * w;
                            out[row + x0..row + x1].copy_from_slice(&other[row + x0..row + x1]);
                        }
                    }
                }
                Draw::Plain => {}
            }
        }
        Some(Mix { labels: perm.iter().map(|&j| labels[j]).collect(), lambda: lambda as f32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixer(mixup: Option<f64>, cutmix: Option<f64>, prob: f64) -> Mixer {
        Mixer { mixup, cutmix, prob, seed: 7 }
    }

    #[test]
    fn draws_are_a_function_of_seed_epoch_and_position() {
        let m = mixer(Some(0.4), Some(1.0), 0.8);
        for (e, s) in [(0, 0), (3, 64), (9, 128)] {
            assert_eq!(m.draw(e, s, 16, 8, 8), m.draw(e, s, 16, 8, 8));
        }
        assert_ne!(m.draw(0, 0, 16, 8, 8), m.draw(0, 16, 16, 8, 8));
        assert_ne!(m.draw(0, 0, 16, 8, 8), m.draw(1, 0, 16, 8, 8));
        assert_ne!(m.draw(0, 0, 16, 8, 8), Mixer { seed: 8, ..m.clone() }.draw(0, 0, 16, 8, 8));
    }

    #[test]
    fn probability_and_method_choice_follow_the_settings() {
        let count = |m: &Mixer| {
            let (mut plain, mut mixup, mut cutmix) = (0, 0, 0);
            for s in 0..2000 {
                match m.draw(0, s * 4, 4, 8, 8) {
                    Draw::Plain => plain += 1,
                    Draw::Mixup { .. } => mixup += 1,
                    Draw::Cutmix { .. } => cutmix += 1,
                }
            }
            (plain, mixup, cutmix)
        };
        let (p, mx, cm) = count(&mixer(Some(0.2), Some(1.0), 0.5));
        assert!((900..1100).contains(&p), "{p} plain of 2000 at prob 0.5");
        assert!((400..600).contains(&mx) && (400..600).contains(&cm), "{mx} mixup, {cm} cutmix");
        assert_eq!(count(&mixer(Some(0.2), None, 1.0)), (0, 2000, 0));
        assert_eq!(count(&mixer(None, Some(0.2), 0.0)), (2000, 0, 0));
    }

    #[test]
    fn mixup_blends_images_with_the_partner_and_cutmix_lambda_is_the_kept_area() {
        let shape = [2usize, 6, 5];
        let len = 60;
        let labels: Vec<i64> = (0..8).collect();
        let base: Vec<f32> = (0..8 * len).map(|i| (i as f32 * 0.37).sin()).collect();
        let m = mixer(Some(0.5), None, 1.0);
        let mut images = base.clone();
        let mix = m.apply(2, 16, shape, &mut images, &labels).unwrap();
        let Draw::Mixup { perm, lambda } = m.draw(2, 16, 8, 6, 5) else { panic!("mixup expected") };
        assert_eq!(mix.lambda, lambda as f32);
        for n in 0..8 {
            assert_eq!(mix.labels[n], perm[n] as i64);
            for k in 0..len {
                let want = lambda as f32 * base[n * len + k] + (1.0 - lambda) as f32 * base[perm[n] * len + k];
                assert_eq!(images[n * len + k], want);
            }
        }
        let m = mixer(None, Some(1.0), 1.0);
        for start in (0..400).step_by(8) {
            let mut images = base.clone();
            let mix = m.apply(0, start, shape, &mut images, &labels).unwrap();
            let mut from_partner = 0;
            for n in 0..8 {
                let j = mix.labels[n] as usize;
                for k in 0..len {
                    let v = images[n * len + k];
                    if v != base[n * len + k] {
                        assert_eq!(v, base[j * len + k]);
                    }
                    if j != n && v == base[j * len + k] && v != base[n * len + k] {
                        from_partner += 1;
                    }
                }
            }
            let Draw::Cutmix { perm, y0, y1, x0, x1, .. } = m.draw(0, start, 8, 6, 5) else { panic!() };
            let area = (y1 - y0) * (x1 - x0);
            assert_eq!(mix.lambda, (1.0 - area as f64 / 30.0) as f32);
            let moved = perm.iter().enumerate().filter(|(n, j)| n != *j).count();
            assert_eq!(from_partner, moved * area * 2, "start {start}");
        }
    }
}
