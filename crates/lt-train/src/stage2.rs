//! Two-stage training (Kang et al. 2020, "Decoupling representation and classifier"): after
//! the run's epochs (stage 1), `--stage2` changes only the classifier head.
//!
//! - `crt`: the head is re-initialised (its values in the model a fresh run starts from) and
//!   retrained on the frozen stage-1 backbone for `--stage2-epochs`, with a head-only step
//!   (`Trainable::Head`: the backbone in eval mode, BatchNorm by its running statistics, which
//!   stay as they are), plain cross-entropy without class weights, the `--stage2-resample`
//!   manifest (class-balanced by default) and `--stage2-lr` under the run's schedule.
//! - `lws`: learnable weight scaling: the head is kept and frozen too; only a per-class scale
//!   f_c of the logits (`lws.scales`, ones at first, appended by `with_logit_scales`) is
//!   trained, with cRT's loss, sampling, epochs and learning rate. The saved model keeps the
//!   scaling node.
//! - `tau-norm`: post hoc, each class vector w_c of the head becomes w_c / ‖w_c‖^τ and the
//!   bias is dropped (set to 0), as the reference code's tau-normalised classifier.
//!
//! Stage 2 starts from the last stage-1 epoch's weights. Its metrics rows are numbered after
//! stage 1's epochs (tau-norm: one test/val row at `epochs + 1`); the run's result is the
//! final stage's last epoch. Stage 2 writes no checkpoint: `--resume` continues stage 1 and
//! then runs stage 2 again, deterministically.

use std::collections::{HashMap, HashSet};

use lt_format::config::Stage2;
use lt_graph::train::{
    Sam, StepOptions, Trainable, head_of, tensor_f32, training_graph_with, with_logit_scales, with_weights,
};

use super::{Progress, Run, TrainError, graph_spec, initial_model};
use crate::config::LossKind;
use crate::engine::Engine;

/// Default epochs of `--stage2 crt`.
pub const DEFAULT_EPOCHS: usize = 10;
/// Default resampler of `--stage2 crt`.
pub const DEFAULT_RESAMPLE: &str = "class-balanced";

/// Stage 2 while it runs: the epochs it numbers and its learning rate.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stage2Run {
    pub lr: f32,
    /// Epochs of stage 2 (numbered from stage 1's `epochs + 1`).
    pub epochs: usize,
}

/// The options of the stage-1 step (MaxNorm, SAM).
pub(super) fn stage1_options(cfg: &crate::config::TrainConfig) -> StepOptions {
    let sam = cfg.sam.map(|rho| Sam { rho: rho as f32, adaptive: cfg.sam_adaptive });
    StepOptions { trainable: Trainable::All, max_norm: cfg.max_norm.map(|r| r as f32), sam }
}

impl Run<'_> {
    /// The last epoch number of the run, stage 2 included.
    pub(super) fn final_epoch(&self) -> usize {
        self.cfg.epochs + self.stage2.map_or(0, |s| s.epochs)
    }

    /// Runs `--stage2` after stage 1 (nothing without it).
    pub(super) fn stage2(&mut self, progress: &dyn Progress) -> Result<(), TrainError> {
        let cfg = self.cfg;
        let Some(method) = cfg.stage2 else { return Ok(()) };
        let trained = with_weights(&self.inference, &self.engine.weights()?)?;
        let head = head_of(&trained)?;
        // Stage 2 reports its own last epoch, never a stage-1 checkpoint.
        self.meta.best_val = None;
        match method {
            Stage2::Crt => {
                let model = self.reinitialised_head(trained, &head.params)?;
                let opts = StepOptions {
                    trainable: Trainable::Head,
                    max_norm: cfg.max_norm.map(|r| r as f32),
                    ..StepOptions::default()
                };
                let what = format!("the head ({}) retrained", head.params.join(", "));
                self.retrain(model, &opts, "cRT", &what, progress)
            }
            Stage2::Lws => {
                let model = with_logit_scales(&trained)?;
                let opts = StepOptions { trainable: Trainable::LogitScales, ..StepOptions::default() };
                self.retrain(model, &opts, "LWS", "per-class logit scales learned", progress)
            }
            Stage2::TauNorm => self.tau_norm(&head, progress),
        }
    }

    /// `trained` with the head's parameters set to the values a fresh run starts from.
    fn reinitialised_head(
        &self,
        trained: lt_graph::onnx::proto::ModelProto,
        head: &[String],
    ) -> Result<lt_graph::onnx::proto::ModelProto, TrainError> {
        let fresh = initial_model(self.cfg, self.data.num_classes(), self.data.info.image_shape[1])?;
        let graph = fresh.graph.as_ref().expect("a built model has a graph");
        let mut init = HashMap::new();
        for t in graph.initializer.iter().filter(|t| head.contains(&t.name)) {
            init.insert(t.name.clone(), tensor_f32(t)?);
        }
        Ok(with_weights(&trained, &init)?)
    }

    /// cRT's and LWS's loop: `model` trained under `opts` (the backbone frozen) with plain
    /// cross-entropy, the stage-2 manifest, epochs and learning rate.
    fn retrain(
        &mut self,
        model: lt_graph::onnx::proto::ModelProto,
        opts: &StepOptions,
        method: &str,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(), TrainError> {
        let cfg = self.cfg;
        let epochs = cfg.stage2_epochs.unwrap_or(DEFAULT_EPOCHS);
        let ce = crate::config::TrainConfig { loss: LossKind::Ce, label_smoothing: 0.0, ..cfg.clone() };
        let spec = graph_spec(&ce, &self.train_counts, &self.device);
        let step = training_graph_with(&model, &spec, opts)?;
        let threads = cfg.threads.unwrap_or_else(crate::device::default_threads);
        self.engine = Engine::new(&step, &model, &self.device, threads)?;
        self.inference = model;
        progress.message(&format!(
            "stage 2 ({method}): {what} on the frozen backbone for {epochs} epochs, {} training-graph nodes",
            self.engine.node_count
        ));

        let strategy = cfg.stage2_resample.as_deref().unwrap_or(DEFAULT_RESAMPLE);
        self.data.compute_missing_manifest(strategy, epochs, cfg.beta)?;
        let in_train: HashSet<u32> = self.split.train.iter().copied().collect();
        let manifest = self.data.manifest(strategy)?;
        self.manifest =
            Some(manifest.into_iter().map(|e| e.into_iter().filter(|i| in_train.contains(i)).collect()).collect());
        self.stage2 = Some(Stage2Run { lr: cfg.stage2_lr.unwrap_or(cfg.lr) as f32, epochs });
        for epoch in cfg.epochs + 1..=cfg.epochs + epochs {
            self.train_epoch(epoch, progress)?;
        }
        Ok(())
    }

    fn tau_norm(&mut self, head: &lt_graph::train::HeadInfo, progress: &dyn Progress) -> Result<(), TrainError> {
        let cfg = self.cfg;
        let tau = cfg.tau_norm.unwrap_or(1.0);
        let mut state: HashMap<String, Vec<f32>> = self.engine.state()?.into_iter().collect();
        let dims = self.engine_dims(&head.weight)?;
        let w = state.get_mut(&head.weight).expect("the head weight is state");
        tau_normalise(w, &dims, head.class_axis, tau as f32);
        for p in head.params.iter().filter(|p| **p != head.weight) {
            state.get_mut(p).expect("head parameters are state").iter_mut().for_each(|v| *v = 0.0);
        }
        self.engine.load_state(&state)?;
        progress.message(&format!("stage 2 (tau-norm): the head's class vectors divided by their norm^{tau}"));
        let epoch = cfg.epochs + 1;
        self.stage2 = Some(Stage2Run { lr: 0.0, epochs: 1 });
        let (test_row, _) = self.evaluate_test(epoch)?;
        self.meta.metrics.push(test_row);
        self.evaluate_validation(epoch)?;
        Ok(())
    }

    fn engine_dims(&self, name: &str) -> Result<Vec<i64>, TrainError> {
        let graph = self.inference.graph.as_ref().expect("a model has a graph");
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.dims.clone())
            .ok_or_else(|| TrainError::Setup(format!("the head weight `{name}` is not an initializer")))
    }
}

/// w_c / ‖w_c‖^τ for each class vector of the 2-D `w` (classes along `class_axis`).
pub fn tau_normalise(w: &mut [f32], dims: &[i64], class_axis: usize, tau: f32) {
    let (rows, cols) = (dims[0] as usize, dims[1] as usize);
    let classes = if class_axis == 0 { rows } else { cols };
    for c in 0..classes {
        let at = |k: usize| if class_axis == 0 { c * cols + k } else { k * cols + c };
        let len = if class_axis == 0 { cols } else { rows };
        let norm = (0..len).map(|k| w[at(k)] * w[at(k)]).sum::<f32>().sqrt();
        let s = if norm > 0.0 { norm.powf(tau) } else { 1.0 };
        (0..len).for_each(|k| w[at(k)] /= s);
    }
}
