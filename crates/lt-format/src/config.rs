//! The resolved training configuration: what `lt-train` flags and `--config FILE.toml` set,
//! what a pipeline's `[train]` table and experiments resolve to, recorded whole in run.json and
//! in checkpoints (a resumed run must match it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::schedule::Schedule;
use crate::vocab::Vocab;
pub use crate::vocab::{Augment, Ep, HeadKind, LossKind, Resampler, Stage2, WeightsKind, WeightsNormalize};

/// Every setting of a training run. Field names are the TOML keys and, with `-` for `_`,
/// the command-line flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// A short name for the run in reports (lt-report's legends and tables).
    pub label: Option<String>,
    pub data: PathBuf,
    pub arch: Option<String>,
    /// The classifier of `arch` (an imported `model` keeps its own).
    pub head: HeadKind,
    /// Scale s of the cosine head; `None`: [`TrainConfig::cosine_scale`]'s default.
    pub cosine_scale: Option<f64>,
    pub model: Option<PathBuf>,
    pub out: PathBuf,
    pub ep: Ep,
    pub device: i32,
    pub tf32: bool,
    /// Do not capture the CUDA training step as CUDA graphs (they are on by default on CUDA).
    pub no_cuda_graph: bool,
    /// Pick cuDNN convolution algorithms by heuristics instead of timing every candidate
    /// when the session starts (exhaustive search, the default).
    pub cudnn_heuristic: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub no_decay_bn_bias: bool,
    pub schedule: Schedule,
    pub warmup: usize,
    pub loss: LossKind,
    pub focal_gamma: f64,
    pub ldam_max_margin: f64,
    pub ldam_scale: f64,
    pub tau: f64,
    /// The VS loss's γ: class c's logit is multiplied by (n_c/n_max)^γ.
    pub vs_gamma: f64,
    pub label_smoothing: f64,
    pub weights: WeightsKind,
    pub beta: f64,
    pub weights_normalize: WeightsNormalize,
    pub drw: Option<usize>,
    pub resample: Option<String>,
    pub augment: Augment,
    /// RandAugment's N, operations per image (with `augment = "randaugment"`).
    pub randaugment_n: usize,
    /// RandAugment's M, the magnitude bin of 0..=30 (with `augment = "randaugment"`).
    pub randaugment_m: usize,
    /// Cutout's square side in pixels (DeVries & Taylor 2017), after any augmentation; absent
    /// (and not written) when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutout: Option<usize>,
    /// Mixup's α (Zhang et al. 2018): a mixed batch is λ·x + (1−λ)·x[perm], λ ~ Beta(α, α),
    /// trained on λ·L(y) + (1−λ)·L(y[perm]). Absent (and not written) when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixup: Option<f64>,
    /// CutMix's α (Yun et al. 2019): a box of area ≈ 1−λ pasted from x[perm], λ ~ Beta(α, α)
    /// then set to the box's real area. With `mixup` too, each mixed batch picks one of the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutmix: Option<f64>,
    /// Probability that a batch is mixed (with `mixup` or `cutmix`); written only when not 1.
    #[serde(skip_serializing_if = "is_one")]
    pub mix_prob: f64,
    /// SAM's ρ (sharpness-aware minimisation, Foret et al. 2021): each step takes the
    /// gradient at w + ρ·g/‖g‖ and applies it to w (two passes per step). Stage 1 only.
    /// Absent (and not written) when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sam: Option<f64>,
    /// Adaptive SAM (Kwon et al. 2021): the ascent step scaled per weight by |w|; needs `sam`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sam_adaptive: bool,
    pub shuffle: bool,
    pub seed: u64,
    pub val_fraction: f64,
    pub threads: Option<usize>,
    /// Two-stage training (Kang et al. 2020): what runs after `epochs`; absent (and not
    /// written, like the other stage-2 settings) when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage2: Option<Stage2>,
    /// Epochs of stage 2 (cRT); default 10. Its metrics rows continue the epoch count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage2_epochs: Option<usize>,
    /// Peak learning rate of stage 2 (the same `schedule` over the stage-2 epochs, no warmup);
    /// default `lr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage2_lr: Option<f64>,
    /// The resampler of stage 2; default `class-balanced`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage2_resample: Option<String>,
    /// τ of `stage2 = "tau-norm"`: w_c / ‖w_c‖^τ; default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tau_norm: Option<f64>,
    /// MaxNorm (weight balancing, Alshammari et al. 2022): after every SGD step each class's
    /// head weight vector is projected onto the ball of this radius.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_norm: Option<f64>,
    /// Skip checking the dataset's files against the sha256 hashes in its dataset.json
    /// (`--no-verify`). Absent from configs written before it existed, hence its default.
    #[serde(default)]
    pub no_verify: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            label: None,
            data: PathBuf::new(),
            arch: None,
            head: HeadKind::Linear,
            cosine_scale: None,
            model: None,
            out: PathBuf::new(),
            ep: Ep::Cpu,
            device: 0,
            tf32: false,
            no_cuda_graph: false,
            cudnn_heuristic: false,
            epochs: 10,
            batch_size: 128,
            eval_batch_size: 256,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            no_decay_bn_bias: false,
            schedule: Schedule::Constant,
            warmup: 0,
            loss: LossKind::Ce,
            focal_gamma: 1.0,
            ldam_max_margin: 0.5,
            ldam_scale: 30.0,
            tau: 1.0,
            vs_gamma: 0.3,
            label_smoothing: 0.0,
            weights: WeightsKind::None,
            beta: 0.9999,
            weights_normalize: WeightsNormalize::Classes,
            drw: None,
            resample: None,
            augment: Augment::CropFlip,
            randaugment_n: 2,
            randaugment_m: 9,
            cutout: None,
            mixup: None,
            cutmix: None,
            mix_prob: 1.0,
            sam: None,
            sam_adaptive: false,
            shuffle: true,
            seed: 0,
            val_fraction: 0.0,
            threads: None,
            stage2: None,
            stage2_epochs: None,
            stage2_lr: None,
            stage2_resample: None,
            tau_norm: None,
            max_norm: None,
            no_verify: false,
        }
    }
}

impl TrainConfig {
    /// Every key a config may set (serde's field list, so also the ones not written while
    /// unset, such as `mixup` or `stage2`): what a pipeline's `[train]` and `[[experiment]]`
    /// tables accept.
    pub fn keys() -> &'static [&'static str] {
        use serde::de::value::Error;
        /// A deserializer that only records the field list serde asks a struct for.
        struct FieldNames(&'static [&'static str]);
        impl<'de> serde::Deserializer<'de> for &mut FieldNames {
            type Error = Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
                Err(serde::de::Error::custom("field names only"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _name: &'static str,
                fields: &'static [&'static str],
                _visitor: V,
            ) -> Result<V::Value, Error> {
                self.0 = fields;
                Err(serde::de::Error::custom("field names only"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
                unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let mut names = FieldNames(&[]);
        let _ = TrainConfig::deserialize(&mut names);
        names.0
    }
}

/// The error of a setting `field` with `value` and what to do instead.
fn bad(field: &'static str, value: String, hint: &str) -> Result<(), ConfigError> {
    Err(ConfigError { field, value, hint: hint.into() })
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// Most epochs of a run.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest training or evaluation batch, in images.
pub const MAX_BATCH_SIZE: usize = 65_536;
/// Most onnxruntime intra-op threads.
pub const MAX_THREADS: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{field}` = {value}: {hint}")]
pub struct ConfigError {
    pub field: &'static str,
    pub value: String,
    pub hint: String,
}

impl TrainConfig {
    /// The cosine head's scale s: `cosine_scale` when set, else 1 with the LDAM loss (its own
    /// `ldam_scale`, 30 by default, multiplies cos − margin, as LDAM-DRW's code does: s = 30
    /// once, the margins on the cosine) and 30 with the other losses.
    pub fn cosine_scale(&self) -> f64 {
        self.cosine_scale.unwrap_or(if self.loss == LossKind::Ldam { 1.0 } else { 30.0 })
    }

    /// Checks values that no type can express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.arch, &self.model) {
            (None, None) => return bad("arch", "none".into(), "give --arch NAME or --model FILE.onnx"),
            (Some(a), Some(m)) => {
                return bad("model", format!("{} with arch {a}", m.display()), "give --arch or --model, not both");
            }
            _ => {}
        }
        if self.model.is_some() && self.head != HeadKind::Linear {
            return bad(
                "head",
                self.head.to_string(),
                "--head applies to --arch; an imported --model keeps its classifier",
            );
        }
        if let Some(s) = self.cosine_scale
            && !(s.is_finite() && s > 0.0)
        {
            return bad("cosine_scale", s.to_string(), "the cosine head's scale must be a finite number > 0");
        }
        if self.data.as_os_str().is_empty() {
            return bad("data", "\"\"".into(), "give --data DIR, a directory written by `lt-data build`");
        }
        if self.out.as_os_str().is_empty() {
            return bad("out", "\"\"".into(), "give --out RUN, the run directory to write");
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "train at least one epoch");
        }
        if self.epochs > MAX_EPOCHS {
            return bad("epochs", self.epochs.to_string(), &format!("at most {MAX_EPOCHS} epochs"));
        }
        for (field, size) in [("batch_size", self.batch_size), ("eval_batch_size", self.eval_batch_size)] {
            if size == 0 {
                return bad(field, "0".into(), "batch sizes must be at least 1");
            }
            if size > MAX_BATCH_SIZE {
                return bad(field, size.to_string(), &format!("batch sizes must be at most {MAX_BATCH_SIZE}"));
            }
        }
        if self.device < 0 {
            return bad("device", self.device.to_string(), "CUDA device indices start at 0");
        }
        if let Some(t) = self.threads
            && !(1..=MAX_THREADS).contains(&t)
        {
            return bad("threads", t.to_string(), &format!("use 1 to {MAX_THREADS} threads, or omit it for all cores"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "the learning rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string(), "momentum must be in [0, 1)");
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("nesterov", "true".into(), "Nesterov momentum needs --momentum > 0 (as torch.optim.SGD)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", self.weight_decay.to_string(), "weight decay must be a finite number >= 0");
        }
        for (field, value, what) in [
            ("focal_gamma", self.focal_gamma, "the focal loss γ"),
            ("ldam_max_margin", self.ldam_max_margin, "LDAM's largest margin"),
            ("tau", self.tau, "the balanced-softmax and VS τ"),
            ("vs_gamma", self.vs_gamma, "the VS loss γ"),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, value.to_string(), &format!("{what} must be a finite number >= 0"));
            }
        }
        if !(self.ldam_scale.is_finite() && self.ldam_scale > 0.0) {
            return bad("ldam_scale", self.ldam_scale.to_string(), "LDAM's logit scale must be a finite number > 0");
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad("beta", self.beta.to_string(), "β must be in [0, 1)");
        }
        if !(0.0..0.5).contains(&self.val_fraction) {
            return bad("val_fraction", self.val_fraction.to_string(), "use a fraction in [0, 0.5)");
        }
        if let Some(d) = self.drw
            && (d == 0 || d > self.epochs)
        {
            return bad("drw", d.to_string(), "the DRW epoch must be between 1 and --epochs");
        }
        if self.warmup >= self.epochs && self.warmup > 0 {
            return bad("warmup", self.warmup.to_string(), "warm-up must be shorter than the run");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", self.label_smoothing.to_string(), "label smoothing must be in [0, 1)");
        }
        for (field, alpha) in [("mixup", self.mixup), ("cutmix", self.cutmix)] {
            if let Some(a) = alpha
                && !(a.is_finite() && a > 0.0)
            {
                return bad(field, a.to_string(), "the Beta(α, α) parameter must be a finite number > 0");
            }
        }
        if !(0.0..=1.0).contains(&self.mix_prob) {
            return bad("mix_prob", self.mix_prob.to_string(), "a probability in [0, 1]");
        }
        if let Some(rho) = self.sam
            && !(rho.is_finite() && rho > 0.0)
        {
            return bad("sam", rho.to_string(), "SAM's ρ must be a positive number (typical 0.05 to 0.8)");
        }
        if self.sam_adaptive && self.sam.is_none() {
            return bad("sam_adaptive", "true".into(), "adaptive SAM needs a ρ: set `sam` too");
        }
        self.validate_augment()?;
        if let Some(r) = &self.resample
            && let Err(e) = Resampler::parse_name(r)
        {
            return bad("resample", format!("`{r}`"), &format!("unknown resampler; use one of {}", e.valid));
        }
        self.validate_stage2()
    }

    /// RandAugment's N and M and Cutout's side (also what `lt-train bench-loader` checks).
    pub fn validate_augment(&self) -> Result<(), ConfigError> {
        if !(1..=16).contains(&self.randaugment_n) {
            return bad("randaugment_n", self.randaugment_n.to_string(), "RandAugment's N must be 1 to 16 operations");
        }
        if self.randaugment_m > 30 {
            return bad("randaugment_m", self.randaugment_m.to_string(), "RandAugment's M is a magnitude bin, 0 to 30");
        }
        if let Some(s) = self.cutout
            && !(1..=4096).contains(&s)
        {
            return bad("cutout", s.to_string(), "Cutout's side must be 1 to 4096 pixels (omit it for none)");
        }
        Ok(())
    }

    /// The stage-2 settings and MaxNorm.
    fn validate_stage2(&self) -> Result<(), ConfigError> {
        // cRT and LWS share the retraining loop and its settings.
        let crt = matches!(self.stage2, Some(Stage2::Crt | Stage2::Lws));
        let tau = self.stage2 == Some(Stage2::TauNorm);
        for (field, set, ok) in [
            ("stage2_epochs", self.stage2_epochs.is_some(), crt),
            ("stage2_lr", self.stage2_lr.is_some(), crt),
            ("stage2_resample", self.stage2_resample.is_some(), crt),
            ("tau_norm", self.tau_norm.is_some(), tau),
        ] {
            if set && !ok {
                return bad(
                    field,
                    "set".into(),
                    "acts only with its stage 2 method (crt and lws: epochs, lr, resample; tau-norm: τ)",
                );
            }
        }
        if let Some(e) = self.stage2_epochs
            && !(1..=MAX_EPOCHS).contains(&e)
        {
            return bad("stage2_epochs", e.to_string(), "must be 1 or more");
        }
        if let Some(lr) = self.stage2_lr
            && !(lr.is_finite() && lr > 0.0)
        {
            return bad("stage2_lr", lr.to_string(), "must be a positive number");
        }
        if let Some(r) = &self.stage2_resample
            && let Err(e) = Resampler::parse_name(r)
        {
            return bad("stage2_resample", format!("`{r}`"), &format!("unknown resampler; use one of {}", e.valid));
        }
        if let Some(t) = self.tau_norm
            && !(t.is_finite() && (0.0..=4.0).contains(&t))
        {
            return bad(
                "tau_norm",
                t.to_string(),
                "τ must be between 0 and 4 (1 divides each class vector by its norm)",
            );
        }
        if let Some(r) = self.max_norm
            && !(r.is_finite() && r > 0.0)
        {
            return bad("max_norm", r.to_string(), "the MaxNorm radius must be a positive number");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TrainConfig;

    #[test]
    fn keys_include_the_settings_not_written_while_unset() {
        let keys = TrainConfig::keys();
        for k in
            ["lr", "schedule", "mixup", "cutmix", "cutout", "sam", "sam_adaptive", "stage2", "max_norm", "no_verify"]
        {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let written = serde_json::to_value(TrainConfig::default()).unwrap();
        let written = written.as_object().unwrap();
        assert!(written.keys().all(|k| keys.contains(&k.as_str())), "every written key is a key");
        assert!(keys.len() > written.len(), "unset options are keys too");
    }
}
