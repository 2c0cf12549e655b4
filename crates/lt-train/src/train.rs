//! A training run from a dataset directory to a run directory (docs/FORMATS.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lt_eval::{ConfusionMatrix, classification_report};
use lt_format::run::{
    ClassWeights, DatasetRef, GraphInfo, RunRecord, RuntimeInfo, Selection, SelectionRule, TestMetrics, Timings,
};
use lt_graph::onnx::proto::ModelProto;
use lt_graph::train::{Loss, Lowering, Sgd, TrainingGraphSpec};

use crate::checkpoint::Checkpoint;
use crate::config::{LossKind, TrainConfig, WeightsKind};
pub use crate::dataset::carve_validation;
use crate::dataset::{Dataset, Split, TrainingSplit, ValidationSource};
use crate::device::Device;
pub use crate::device::resolve_device;
use crate::engine::{CudaGraph, Engine, StepBatch};
pub use crate::error::TrainError;
use crate::loader::{BatchMaker, Normalization, NormalizationOf, Prefetcher, epoch_order};
pub use crate::progress::{EpochSummary, Progress, Silent};
use crate::record::{MetricsRow, Predictions, write_metrics, write_predictions};
use crate::schedule::learning_rate;

#[path = "stage2.rs"]
pub mod stage2;

/// Metadata stored in checkpoints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    pub config: TrainConfig,
    pub metrics: Vec<MetricsRow>,
    pub epoch_seconds: Vec<f64>,
    /// Best validation balanced accuracy and its epoch, with `--val-fraction`.
    pub best_val: Option<(f64, usize)>,
}

const BEST_CHECKPOINT: &str = "best.ckpt";
const LAST_CHECKPOINT: &str = "last.ckpt";

/// The inference model a run starts from.
pub fn initial_model(cfg: &TrainConfig, num_classes: usize, image_size: usize) -> Result<ModelProto, TrainError> {
    if let Some(arch) = &cfg.arch {
        let mut net = lt_graph::models::Arch::named(arch, num_classes)?;
        net.set_image_size(image_size);
        let head = match cfg.head {
            crate::config::HeadKind::Linear => lt_graph::models::Head::Linear,
            crate::config::HeadKind::Cosine => lt_graph::models::Head::Cosine { scale: cfg.cosine_scale() as f32 },
        };
        Ok(net.build(head, cfg.seed)?)
    } else {
        let path = cfg.model.as_ref().expect("validated: arch or model");
        let model = lt_graph::import::import(&lt_graph::onnx::load(path)?)?;
        let classes = lt_graph::import::output_classes(&model)?;
        if classes != num_classes {
            return Err(TrainError::Setup(format!(
                "{}: the model has {classes} outputs but the dataset has {num_classes} classes",
                path.display()
            )));
        }
        Ok(model)
    }
}

/// The loss of the training graph for `cfg`.
pub fn loss_of(cfg: &TrainConfig) -> Loss {
    match cfg.loss {
        LossKind::Ce => Loss::CrossEntropy { label_smoothing: cfg.label_smoothing as f32 },
        LossKind::Focal => Loss::Focal { gamma: cfg.focal_gamma as f32 },
        LossKind::Ldam => Loss::Ldam { max_margin: cfg.ldam_max_margin as f32, scale: cfg.ldam_scale as f32 },
        LossKind::BalancedSoftmax => Loss::BalancedSoftmax { tau: cfg.tau as f32 },
        LossKind::Vs => Loss::Vs { gamma: cfg.vs_gamma as f32, tau: cfg.tau as f32 },
    }
}

/// Per-class loss weights of the scheme, through lt-data's functions (the same as `lt-data weights`).
pub fn scheme_weights(cfg: &TrainConfig, counts: &[u64]) -> Result<Vec<f32>, TrainError> {
    use lt_data::weights::{WeightScheme, class_weights};
    let beta = (cfg.weights == WeightsKind::EffectiveNumber).then_some(cfg.beta);
    let scheme = WeightScheme::from_kind(cfg.weights, beta).map_err(|e| TrainError::Weights(e.to_string()))?;
    let normalize = cfg.weights_normalize;
    let w = class_weights(counts, &scheme, normalize).map_err(|e| TrainError::Weights(e.to_string()))?;
    Ok(w.into_iter().map(|v| v as f32).collect())
}

/// Runs training as configured, writing the run directory. Returns the run's record.
pub fn run(cfg: &TrainConfig, resume: bool, force: bool, progress: &dyn Progress) -> Result<RunRecord, TrainError> {
    cfg.validate()?;
    let started = Instant::now();
    // Everything is written into RUN.partial and swapped in for RUN when training succeeded:
    // a failed run leaves the old one as it was, and no directory.
    let staging = match open_run_dir(&cfg.out, resume, force, progress)? {
        RunDir::Staging(s) => s,
        RunDir::Finished(record) => return Ok(*record),
    };
    let mut run = Run::set_up(cfg, staging.path(), progress)?;
    if resume {
        run.resume(progress)?;
    }
    for epoch in run.start_epoch..=cfg.epochs {
        run.train_epoch(epoch, progress)?;
    }
    run.stage2(progress)?;
    let record = run.finish(started)?;
    staging.commit()?;
    Ok(record)
}

/// A run between its epochs: the data, the engine and what the epochs recorded so far.
struct Run<'a> {
    cfg: &'a TrainConfig,
    /// RUN.partial, where everything is written.
    out: PathBuf,
    device: Device,
    data: Dataset,
    split: TrainingSplit,
    train_counts: Vec<u64>,
    /// Per epoch, the manifest's visiting order restricted to the training images.
    manifest: Option<Vec<Vec<u32>>>,
    inference: ModelProto,
    engine: Engine,
    norm: Normalization,
    weights_on: Vec<f32>,
    weights_off: Vec<f32>,
    maker: BatchMaker,
    eval_maker: BatchMaker,
    test_maker: BatchMaker,
    test_idx: Vec<u32>,
    meta: CheckpointMeta,
    start_epoch: usize,
    /// Set while `--stage2` runs (stage2.rs).
    stage2: Option<stage2::Stage2Run>,
}

impl<'a> Run<'a> {
    /// Opens the dataset, chooses the training and validation images, builds the training
    /// graph and its sessions.
    fn set_up(cfg: &'a TrainConfig, out: &Path, progress: &dyn Progress) -> Result<Self, TrainError> {
        let device = resolve_device(cfg, progress)?;
        let data = Dataset::open_for_training(cfg)?;
        let num_classes = data.num_classes();
        let shape = data.info.image_shape;
        let split = data.training_split(cfg);
        let train_counts = count_labels(&data.train, &split.train, num_classes);
        if split.train.len() < cfg.batch_size {
            return Err(TrainError::Setup(format!(
                "the training subset has {} images, fewer than --batch-size {}; lower the batch size",
                split.train.len(),
                cfg.batch_size
            )));
        }
        let manifest = match &cfg.resample {
            Some(strategy) => {
                let in_train: std::collections::HashSet<u32> = split.train.iter().copied().collect();
                let epochs = data.manifest(strategy)?;
                Some(epochs.into_iter().map(|e| e.into_iter().filter(|i| in_train.contains(i)).collect()).collect())
            }
            None => None,
        };

        let inference = initial_model(cfg, num_classes, shape[1])?;
        let spec = graph_spec(cfg, &train_counts, &device);
        let graph = lt_graph::train::training_graph_with(&inference, &spec, &stage2::stage1_options(cfg))?;
        let threads = cfg.threads.unwrap_or_else(crate::device::default_threads);
        let engine = Engine::new(&graph, &inference, &device, threads)?;
        progress.message(&format!(
            "{} on {}: {} training-graph nodes, sessions ready in {:.1}s",
            cfg.arch.clone().unwrap_or_else(|| "imported model".into()),
            device.name(),
            engine.node_count,
            engine.session_seconds
        ));
        if let CudaGraph::Fallback(why) = &engine.cuda_graph {
            progress.message(&format!("CUDA graph capture failed, training with plain runs: {why}"));
        }

        let norm = Normalization::of(&data.train, &split.train, shape);
        let weights_on = scheme_weights(cfg, &train_counts)?;
        let train_split = Arc::new(data.train.clone());
        let params = crate::augment::Params::of(cfg);
        let maker =
            BatchMaker { split: train_split, shape, norm: norm.clone(), augment: cfg.augment, params, seed: cfg.seed };
        let eval_maker =
            BatchMaker { augment: crate::loader::Augment::None, params: Default::default(), ..maker.clone() };
        let test_maker = BatchMaker { split: Arc::new(data.test.clone()), ..eval_maker.clone() };
        let test_idx: Vec<u32> = (0..data.test.len() as u32).collect();
        let meta =
            CheckpointMeta { config: cfg.clone(), metrics: Vec::new(), epoch_seconds: Vec::new(), best_val: None };
        Ok(Run {
            cfg,
            out: out.to_path_buf(),
            device,
            data,
            split,
            train_counts,
            manifest,
            inference,
            engine,
            norm,
            weights_on,
            weights_off: vec![1.0f32; num_classes],
            maker,
            eval_maker,
            test_maker,
            test_idx,
            meta,
            start_epoch: 1,
            stage2: None,
        })
    }

    fn ckpt_dir(&self) -> PathBuf {
        self.out.join("checkpoints")
    }

    /// Continues from RUN.partial/checkpoints/last.ckpt, which must have the same settings.
    fn resume(&mut self, progress: &dyn Progress) -> Result<(), TrainError> {
        let path = self.ckpt_dir().join(LAST_CHECKPOINT);
        if !path.is_file() {
            progress.message("--resume: no checkpoint yet, starting from epoch 1");
            return Ok(());
        }
        let ck: Checkpoint<CheckpointMeta> = Checkpoint::load(&path)?;
        // The run directory may have been moved or copied since, and the dataset check may be
        // skipped on the second try: neither is a training setting.
        let cfg = self.cfg;
        let saved = TrainConfig { out: cfg.out.clone(), no_verify: cfg.no_verify, ..ck.meta.config.clone() };
        if saved != *cfg {
            return Err(TrainError::Setup(format!(
                "{}: the checkpoint was written with other settings; resume with the same options or start a new --out",
                path.display()
            )));
        }
        self.engine.load_state(&ck.tensor_map())?;
        self.start_epoch = ck.epoch + 1;
        self.meta = ck.meta;
        progress.message(&format!("resuming after epoch {} from {}", ck.epoch, path.display()));
        Ok(())
    }

    /// The order in which epoch `epoch` visits the training images.
    fn epoch_order(&self, epoch: usize) -> Vec<u32> {
        let cfg = self.cfg;
        match &self.manifest {
            // A manifest already fixes the visiting order.
            Some(epochs) if !epochs.is_empty() => {
                let base = &epochs[(epoch - 1) % epochs.len()];
                if cfg.shuffle { base.clone() } else { epoch_order(base, cfg.seed, epoch, false) }
            }
            _ => epoch_order(&self.split.train, cfg.seed, epoch, cfg.shuffle),
        }
    }

    /// One epoch: the training steps, then test and validation evaluations, then the
    /// checkpoints (last, and best on validation).
    fn train_epoch(&mut self, epoch: usize, progress: &dyn Progress) -> Result<(), TrainError> {
        let cfg = self.cfg;
        let num_classes = self.data.num_classes();
        let t0 = Instant::now();
        let order = self.epoch_order(epoch);
        let steps_now = order.len() / cfg.batch_size;
        // The schedule counts steps of a subset-sized epoch, whatever a manifest's length.
        let steps = self.split.train.len() / cfg.batch_size;
        progress.epoch_start(epoch, cfg.epochs, steps_now);
        let off = self.stage2.is_some() || cfg.drw.is_some_and(|d| epoch < d);
        let weights = if off { &self.weights_off } else { &self.weights_on };
        let mut loss_sum = 0f64;
        let (mut seen_labels, mut seen_preds) = (Vec::new(), Vec::new());
        let mixer = crate::mix::Mixer::of(cfg);
        for (step, batch) in
            Prefetcher::start_mixed(self.maker.clone(), mixer, epoch, order, cfg.batch_size).enumerate()
        {
            let lr = match self.stage2 {
                Some(s) => learning_rate(s.lr, &cfg.schedule, 0, epoch - cfg.epochs, step, steps.max(1), s.epochs),
                None => learning_rate(cfg.lr as f32, &cfg.schedule, cfg.warmup, epoch, step, steps.max(1), cfg.epochs),
            };
            let mix = batch.mix.as_ref().map(|m| (m.labels.as_slice(), m.lambda));
            let step_batch = StepBatch { images: &batch.images, labels: &batch.labels, mix };
            let out_step = self.engine.step_mixed(step_batch, weights, lr)?;
            if !out_step.loss.is_finite() {
                return Err(TrainError::NonFinite {
                    value: out_step.loss,
                    epoch,
                    step: step + 1,
                    out: cfg.out.clone(),
                });
            }
            loss_sum += out_step.loss as f64;
            for (n, row) in out_step.logits.chunks(num_classes).enumerate() {
                seen_labels.push(batch.labels[n] as usize);
                seen_preds.push(lt_format::scores::argmax(row));
            }
            progress.step(step + 1, out_step.loss, cfg.batch_size);
        }
        let train_time = t0.elapsed().as_secs_f64();
        let train_report =
            classification_report(&ConfusionMatrix::from_predictions(&seen_labels, &seen_preds, num_classes));
        let train_loss = loss_sum / steps_now.max(1) as f64;
        self.meta.metrics.push(MetricsRow {
            epoch: epoch as u32,
            split: "train".into(),
            loss: train_loss,
            accuracy: train_report.accuracy,
            balanced_accuracy: train_report.balanced_accuracy,
            per_class_accuracy: train_report.per_class_accuracy.clone(),
        });
        let (test_row, _) = self.evaluate_test(epoch)?;
        let test_acc = (test_row.accuracy, test_row.balanced_accuracy);
        self.meta.metrics.push(test_row);
        let val_bal = self.evaluate_validation(epoch)?;
        self.meta.epoch_seconds.push(t0.elapsed().as_secs_f64());
        if self.stage2.is_none() {
            self.save_checkpoints(epoch, val_bal)?;
        }
        progress.epoch_end(&EpochSummary {
            epoch,
            train_loss,
            train_accuracy: train_report.accuracy,
            test_accuracy: test_acc.0,
            test_balanced_accuracy: test_acc.1,
            val_balanced_accuracy: val_bal,
            seconds: t0.elapsed().as_secs_f64(),
            images_per_second: (steps_now * cfg.batch_size) as f64 / train_time.max(1e-9),
        });
        Ok(())
    }

    /// last.ckpt after every epoch; best.ckpt when validation improved (the first best wins
    /// ties).
    fn save_checkpoints(&mut self, epoch: usize, val_bal: Option<f64>) -> Result<(), TrainError> {
        let ckpt_dir = self.ckpt_dir();
        std::fs::create_dir_all(&ckpt_dir).map_err(|e| output_err(&ckpt_dir, e))?;
        let ck = Checkpoint { epoch, meta: self.meta.clone(), tensors: self.engine.state()? };
        if let Some(v) = val_bal
            && self.meta.best_val.is_none_or(|(best, _)| v > best)
        {
            self.meta.best_val = Some((v, epoch));
            Checkpoint { meta: self.meta.clone(), ..ck.clone() }.save(&ckpt_dir.join(BEST_CHECKPOINT))?;
        }
        Checkpoint { meta: self.meta.clone(), ..ck }.save(&ckpt_dir.join(LAST_CHECKPOINT)).map_err(TrainError::from)
    }

    /// The validation images through the current weights, recorded in the metrics as epoch
    /// `epoch`; their balanced accuracy, or `None` without validation images.
    pub(crate) fn evaluate_validation(&mut self, epoch: usize) -> Result<Option<f64>, TrainError> {
        if self.split.validation.is_empty() {
            return Ok(None);
        }
        let (row, _) = evaluate_split(
            &mut self.engine,
            &self.eval_maker,
            &self.data.train,
            &self.split.validation,
            self.cfg.eval_batch_size,
            epoch,
            "val",
        )?;
        let balanced = row.balanced_accuracy;
        self.meta.metrics.push(row);
        Ok(Some(balanced))
    }

    /// The test split through the current weights, recorded as epoch `epoch`.
    fn evaluate_test(&mut self, epoch: usize) -> Result<(MetricsRow, Predictions), TrainError> {
        let test_split = self.test_maker.split.clone();
        evaluate_split(
            &mut self.engine,
            &self.test_maker,
            &test_split,
            &self.test_idx,
            self.cfg.eval_batch_size,
            epoch,
            "test",
        )
    }

    /// Chooses the reported epoch (the best on validation, else the last; never on test),
    /// writes model.onnx, the tables and run.json.
    fn finish(mut self, started: Instant) -> Result<RunRecord, TrainError> {
        let cfg = self.cfg;
        let validation = match self.split.source {
            ValidationSource::Dataset { .. } => Some("dataset".to_string()),
            ValidationSource::Carved { .. } => Some("carved".to_string()),
            ValidationSource::None => None,
        };
        let (selection, last) = match self.meta.best_val {
            Some((_, e)) => {
                let selection = Selection { rule: SelectionRule::BestValidationBalancedAccuracy, epoch: e, validation };
                if e == cfg.epochs {
                    (selection, None)
                } else {
                    let (row, predictions) = self.evaluate_test(cfg.epochs)?;
                    let last = test_metrics(&row, &predictions, &self.train_counts);
                    let best: Checkpoint<CheckpointMeta> = Checkpoint::load(&self.ckpt_dir().join(BEST_CHECKPOINT))?;
                    self.engine.load_state(&best.tensor_map())?;
                    (selection, Some(last))
                }
            }
            None => (Selection { rule: SelectionRule::LastEpoch, epoch: self.final_epoch(), validation: None }, None),
        };
        let (final_row, predictions) = self.evaluate_test(selection.epoch)?;
        let final_metrics = test_metrics(&final_row, &predictions, &self.train_counts);
        let out = &self.out;
        let trained = lt_graph::train::with_weights(&self.inference, &self.engine.weights()?)?;
        lt_graph::onnx::save(&trained, &out.join("model.onnx"))?;
        write_predictions(&out.join(lt_format::tables::PREDICTIONS_FILE), &predictions)?;
        write_metrics(&out.join(lt_format::tables::METRICS_FILE), &self.meta.metrics)?;
        let runtime = crate::runtime::Runtime::get(!self.device.is_cpu())?;
        let num_classes = self.data.num_classes();
        let record = RunRecord {
            label: cfg.label.clone(),
            config: cfg.clone(),
            dataset: DatasetRef { dir: cfg.data.clone(), content_hash: self.data.content_hash.clone() },
            seed: cfg.seed,
            onnxruntime: RuntimeInfo {
                version: crate::runtime::ORT_VERSION.to_string(),
                library: runtime.library.clone(),
            },
            execution_provider: self.device.name(),
            class_names: self.data.info.class_names.clone(),
            val_counts: count_labels(&self.data.train, &self.split.validation, num_classes),
            test_counts: count_labels(&self.data.test, &self.test_idx, num_classes),
            train_counts: self.train_counts,
            class_weights: ClassWeights {
                before_drw: cfg.drw.map(|_| self.weights_off.clone()),
                drw_epoch: cfg.drw,
                weights: self.weights_on,
            },
            normalization: self.norm,
            graph: GraphInfo {
                nodes: self.engine.node_count,
                session_seconds: self.engine.session_seconds,
                cuda_graph: serde_json::to_value(&self.engine.cuda_graph).map_err(|e| output_err(out, e))?,
            },
            timings: Timings { total_s: started.elapsed().as_secs_f64(), per_epoch_s: self.meta.epoch_seconds.clone() },
            selection: Some(selection),
            final_metrics,
            last,
        };
        lt_fs::write_atomic(&out.join(RunRecord::FILE), record.to_json().as_bytes())?;
        Ok(record)
    }
}

/// The training-step spec of `cfg` (loss, SGD, mixing, lowering for `device`).
fn graph_spec(cfg: &TrainConfig, train_counts: &[u64], device: &Device) -> TrainingGraphSpec {
    TrainingGraphSpec {
        batch_size: cfg.batch_size,
        loss: loss_of(cfg),
        sgd: Sgd {
            momentum: cfg.momentum as f32,
            nesterov: cfg.nesterov,
            weight_decay: cfg.weight_decay as f32,
            decay_bn_and_bias: !cfg.no_decay_bn_bias,
        },
        class_counts: train_counts.to_vec(),
        lowering: if device.is_cpu() { Lowering::Cpu } else { Lowering::Cuda },
        mixed_labels: crate::mix::Mixer::of(cfg).is_some(),
    }
}

/// The test metrics of one evaluation: the numbers run.json reports for an epoch.
fn test_metrics(row: &MetricsRow, predictions: &Predictions, train_counts: &[u64]) -> TestMetrics {
    let (labels, preds) = (predictions.labels(), predictions.predictions());
    let c = predictions.num_classes;
    let cm = ConfusionMatrix::from_predictions(&labels, &preds, c);
    let report = classification_report(&cm);
    let shots = lt_eval::shot_groups(train_counts, &report.per_class_accuracy, lt_eval::ShotSplit::default());
    let thirds = lt_eval::shot_groups(train_counts, &report.per_class_accuracy, lt_eval::ShotSplit::Thirds);
    let ece = lt_eval::expected_calibration_error(&predictions.scores, &labels, c, lt_eval::ECE_BINS);
    TestMetrics {
        epoch: row.epoch as usize,
        loss: row.loss,
        overall: report.accuracy,
        balanced: report.balanced_accuracy,
        per_class: report.per_class_accuracy,
        precision: report.precision,
        f1: report.f1,
        macro_f1: report.macro_f1,
        gmean: report.gmean,
        ece,
        shots,
        thirds,
        confusion: cm.counts,
    }
}

fn count_labels(split: &Split, idx: &[u32], num_classes: usize) -> Vec<u64> {
    let mut c = vec![0u64; num_classes];
    for &i in idx {
        c[split.labels[i as usize] as usize] += 1;
    }
    c
}

fn output_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Output { path: path.to_path_buf(), message: e.to_string() }
}

/// Where a run writes, or the finished run that `--resume` found.
enum RunDir {
    Staging(lt_fs::Staging),
    Finished(Box<RunRecord>),
}

/// Opens RUN.partial: the interrupted run with `resume`, else a new one. An existing non-empty
/// RUN needs `force` (and must be a run lt-train wrote); `--resume` on a finished run with
/// nothing interrupted returns that run instead of training it again.
fn open_run_dir(out: &Path, resume: bool, force: bool, progress: &dyn Progress) -> Result<RunDir, TrainError> {
    let owner = lt_fs::owners::RUN;
    if resume {
        if let Some(s) = lt_fs::Staging::resume(out, owner)? {
            return Ok(RunDir::Staging(s));
        }
        let run_json = out.join(RunRecord::FILE);
        if run_json.is_file() {
            let record = RunRecord::read_file(&run_json).map_err(|e| output_err(&run_json, e))?;
            progress.message(&format!("--resume: {} is a finished run; nothing to resume", out.display()));
            return Ok(RunDir::Finished(Box::new(record)));
        }
        progress.message(&format!("--resume: no interrupted run of {}, starting from epoch 1", out.display()));
        // A resumed attempt keeps its directory on failure; so does this first one.
        let mut s = lt_fs::Staging::begin(out, owner, force).map_err(|e| not_empty_hint(e, out))?;
        s.discard_on_drop(false);
        return Ok(RunDir::Staging(s));
    }
    if !force && lt_fs::Staging::interrupted(out, &owner) {
        let partial = lt_fs::staging_path(out);
        return Err(TrainError::Output {
            path: partial,
            message: "holds an interrupted run; pass --resume to continue it, --force to start again, or choose another --out".into(),
        });
    }
    Ok(RunDir::Staging(lt_fs::Staging::begin(out, owner, force).map_err(|e| not_empty_hint(e, out))?))
}

/// lt-train's wording for a non-empty run directory: it can also be resumed.
fn not_empty_hint(e: lt_fs::FsError, out: &Path) -> TrainError {
    match e {
        lt_fs::FsError::NotEmpty { .. } => TrainError::Output {
            path: out.to_path_buf(),
            message: "the run directory exists and is not empty; pass --resume to continue it, --force to overwrite it, or choose another --out".into(),
        },
        e => e.into(),
    }
}

/// Evaluates the images `idx` of `split`: the metrics row (unweighted CE loss) and predictions.
fn evaluate_split(
    engine: &mut Engine,
    maker: &BatchMaker,
    split: &Split,
    idx: &[u32],
    batch: usize,
    epoch: usize,
    name: &str,
) -> Result<(MetricsRow, Predictions), TrainError> {
    let c = engine.num_classes();
    let mut pred = Predictions { num_classes: c, ..Default::default() };
    let mut loss = 0f64;
    for chunk in idx.chunks(batch) {
        let b = maker.make(0, 0, chunk);
        let logits = engine.evaluate(&b.images, chunk.len())?;
        for (n, row) in logits.chunks(c).enumerate() {
            let label = split.labels[chunk[n] as usize];
            let p = pred.push_logits(chunk[n], label, row);
            loss += -p[label as usize].ln();
        }
    }
    let cm = ConfusionMatrix::from_predictions(&pred.labels(), &pred.predictions(), c);
    let r = classification_report(&cm);
    let row = MetricsRow {
        epoch: epoch as u32,
        split: name.into(),
        loss: loss / idx.len().max(1) as f64,
        accuracy: r.accuracy,
        balanced_accuracy: r.balanced_accuracy,
        per_class_accuracy: r.per_class_accuracy,
    };
    Ok((row, pred))
}
