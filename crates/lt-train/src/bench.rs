//! Training-step throughput on device-resident state (`lt-train bench`), and the loader's
//! throughput on its own (`lt-train bench-loader`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use lt_graph::train::{Loss, Lowering, Sgd, TrainingGraphSpec};

use std::sync::Arc;

use crate::dataset::Dataset;
use crate::device::Device;
use crate::engine::Engine;
use crate::error::TrainError;
use crate::loader::{Augment, BatchMaker, Normalization, NormalizationOf, Prefetcher, epoch_order};

/// What the bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub arch: String,
    /// The step timed: `full`, `head-only` (frozen backbone) or `sam` (two passes).
    pub step: String,
    pub device: String,
    pub batch_size: usize,
    pub steps: usize,
    pub graph_nodes: usize,
    /// Nodes as built, before the clean-up pass (CSE, Identity bypass, dead nodes).
    pub graph_nodes_as_built: usize,
    pub graph_build_seconds: f64,
    pub session_seconds: f64,
    pub ms_per_step: f64,
    pub cuda_graph: crate::engine::CudaGraph,
    pub images_per_second: f64,
    pub eval_batch_size: Option<usize>,
    /// Evaluation throughput at `eval_batch_size` (`--eval-batch-size`).
    pub eval_images_per_second: Option<f64>,
    /// (op type, ms per timed step, share of all node time) from the profile, most expensive
    /// first; warm-up runs excluded.
    pub top_ops: Vec<(String, f64, f64)>,
}

/// Builds the training graph of `arch` for `batch` images (with `opts`: the head-only step,
/// SAM) and times `steps` steps after `warmup` steps, on a fixed random batch (the loader is
/// not part of the figure).
#[allow(clippy::too_many_arguments)]
pub fn bench(
    arch: &str,
    opts: &lt_graph::train::StepOptions,
    classes: usize,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &Device,
    threads: usize,
    profile: Option<&Path>,
    eval_batch: Option<usize>,
) -> Result<BenchResult, TrainError> {
    let t0 = Instant::now();
    let inference = lt_graph::models::build(arch, classes, lt_graph::models::Head::Linear, 0)?;
    let form = if device.is_cpu() { Lowering::Cpu } else { Lowering::Cuda };
    let graph = lt_graph::train::training_graph_with(&inference, &bench_spec(batch, classes, form), opts)?;
    let graph_build_seconds = t0.elapsed().as_secs_f64();
    let mut engine = Engine::with_profile(&graph, &inference, device, threads, profile)?;
    let mut batches = RandomBatches::new(batch, classes, graph.image_shape, 0);
    let (images, labels) = batches.next_batch();
    let weights = vec![1.0f32; classes];
    for _ in 0..warmup {
        engine.step(&images, &labels, &weights, 0.01)?;
    }
    let t1 = Instant::now();
    for _ in 0..steps {
        engine.step(&images, &labels, &weights, 0.01)?;
    }
    let secs = t1.elapsed().as_secs_f64();
    // Evaluation: the inference graph on the live state, host batch in, logits out.
    let eval_images_per_second = match eval_batch {
        Some(n) => {
            let mut eval_batches = RandomBatches::new(n, classes, graph.image_shape, 1);
            let (images, _) = eval_batches.next_batch();
            for _ in 0..warmup.max(1) {
                engine.evaluate(&images, n)?;
            }
            let t2 = Instant::now();
            for _ in 0..steps {
                engine.evaluate(&images, n)?;
            }
            Some((n * steps) as f64 / t2.elapsed().as_secs_f64().max(1e-9))
        }
        None => None,
    };
    let top_ops = match profile {
        Some(_) => top_ops(Path::new(&engine.end_profiling()?), steps)?,
        None => Vec::new(),
    };
    let step = match (opts.trainable, opts.sam) {
        (lt_graph::train::Trainable::All, None) => "full".to_string(),
        (lt_graph::train::Trainable::All, Some(sam)) => format!("sam (rho {})", sam.rho),
        (_, _) => "head-only".to_string(),
    };
    Ok(BenchResult {
        arch: arch.to_string(),
        step,
        device: device.name(),
        batch_size: batch,
        steps,
        graph_nodes: engine.node_count,
        graph_nodes_as_built: graph.cleanup.nodes_before,
        graph_build_seconds,
        session_seconds: engine.session_seconds,
        cuda_graph: engine.cuda_graph.clone(),
        ms_per_step: secs * 1000.0 / steps.max(1) as f64,
        images_per_second: (batch * steps) as f64 / secs.max(1e-9),
        eval_batch_size: eval_batch,
        eval_images_per_second,
        top_ops,
    })
}

/// The training step every bench times: weighted CE (weights 1), torch SGD momentum 0.9,
/// weight decay 5e-4, as the PyTorch anchor.
fn bench_spec(batch: usize, classes: usize, form: Lowering) -> TrainingGraphSpec {
    TrainingGraphSpec {
        batch_size: batch,
        loss: Loss::CrossEntropy { label_smoothing: 0.0 },
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
        class_counts: vec![100; classes],
        lowering: form,
        mixed_labels: false,
    }
}

/// Seeded batches of uniform [-1, 1) images and cycling labels (xorshift: no RNG crate
/// state to keep in step between two engines).
struct RandomBatches {
    state: u64,
    batch: usize,
    classes: usize,
    image_len: usize,
}

impl RandomBatches {
    fn new(batch: usize, classes: usize, [c, h, w]: [usize; 3], seed: u64) -> Self {
        RandomBatches {
            state: 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            batch,
            classes,
            image_len: c * h * w,
        }
    }

    fn next_batch(&mut self) -> (Vec<f32>, Vec<i64>) {
        let mut next = || {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state
        };
        let images =
            (0..self.batch * self.image_len).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0).collect();
        let labels = (0..self.batch).map(|_| (next() % self.classes as u64) as i64).collect();
        (images, labels)
    }
}

/// The loss curves of the same training run on two engines.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Agreement {
    pub arch: String,
    pub batch_size: usize,
    /// `(device name, gradient formulation)` of each side.
    pub sides: [(String, String); 2],
    pub losses: [Vec<f32>; 2],
    /// max over steps of |a − b| / max(|a|, |b|, 1e-6)
    pub max_relative_difference: f64,
}

/// Learning rate of [`agreement`]: on random labels a large step makes training chaotic, and
/// float rounding differences then grow by orders of magnitude within 20 steps (lr 0.1 gave
/// 2e-3 between two exact formulations on the CPU); 0.01 keeps the curves comparable.
pub const AGREEMENT_LR: f32 = 0.01;

/// Trains `arch` from the same seeded weights for `steps` steps on the same seeded random
/// batches (a new batch each step, lr [`AGREEMENT_LR`]) on two (device, formulation) sides, and returns
/// both loss curves. CUDA against CPU is the GPU check; two formulations on the CPU test the
/// CUDA formulation where no GPU is.
pub fn agreement(
    arch: &str,
    classes: usize,
    batch: usize,
    steps: usize,
    sides: [(&Device, Lowering); 2],
    threads: usize,
) -> Result<Agreement, TrainError> {
    let inference = lt_graph::models::build(arch, classes, lt_graph::models::Head::Linear, 0)?;
    let mut losses: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    for (k, (device, form)) in sides.iter().enumerate() {
        let graph = lt_graph::train::training_graph(&inference, &bench_spec(batch, classes, *form))?;
        let mut engine = Engine::new(&graph, &inference, device, threads)?;
        let mut batches = RandomBatches::new(batch, classes, graph.image_shape, 7);
        let weights = vec![1.0f32; classes];
        for _ in 0..steps {
            let (images, labels) = batches.next_batch();
            losses[k].push(engine.step(&images, &labels, &weights, AGREEMENT_LR)?.loss);
        }
    }
    let max_relative_difference = losses[0]
        .iter()
        .zip(&losses[1])
        .map(|(&a, &b)| {
            // A diverged side (NaN/inf loss) is infinitely far: f64::max would skip a NaN.
            if !(a.is_finite() && b.is_finite()) {
                return f64::INFINITY;
            }
            ((a - b).abs() / a.abs().max(b.abs()).max(1e-6)) as f64
        })
        .fold(0.0, f64::max);
    let side = |(d, f): &(&Device, Lowering)| (d.name(), format!("{f:?}").to_lowercase());
    Ok(Agreement {
        arch: arch.to_string(),
        batch_size: batch,
        sides: [side(&sides[0]), side(&sides[1])],
        losses,
        max_relative_difference,
    })
}

/// What the loader bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoaderBenchResult {
    pub data: String,
    pub batch_size: usize,
    pub augment: Augment,
    /// RandAugment's N and M and Cutout's side, as the batches were made.
    pub params: crate::augment::Params,
    /// Reading `samples.parquet` + `subset.parquet` (Arrow) into memory, and the
    /// normalisation statistics of the subset.
    pub open_seconds: f64,
    pub epochs: usize,
    pub images: usize,
    /// Wall time of the epochs: batches made by the background prefetcher and received
    /// by this thread, which only sums one value per batch.
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Times the loader alone: `epochs` epochs of the training subset in shuffled order through
/// the same `Prefetcher` and `BatchMaker` as a training run (crop+flip, normalisation), with
/// nothing consuming the batches, so the figure is what the loader can deliver to a device.
/// `params` are RandAugment's N and M and Cutout's side.
pub fn loader(
    data: &Path,
    batch: usize,
    epochs: usize,
    augment: Augment,
    params: crate::augment::Params,
    seed: u64,
) -> Result<LoaderBenchResult, TrainError> {
    let t0 = Instant::now();
    let dataset = Dataset::open(data)?;
    let shape = dataset.info.image_shape;
    let norm = Normalization::of(&dataset.train, &dataset.subset, shape);
    let open_seconds = t0.elapsed().as_secs_f64();
    let maker = BatchMaker { split: Arc::new(dataset.train), shape, norm, augment, params, seed };
    let t1 = Instant::now();
    let (mut images, mut checksum) = (0usize, 0f64);
    for epoch in 0..epochs {
        let order = epoch_order(&dataset.subset, seed, epoch, true);
        for b in Prefetcher::start(maker.clone(), epoch, order, batch) {
            images += b.labels.len();
            checksum += b.images[b.images.len() / 2] as f64;
        }
    }
    let seconds = t1.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    Ok(LoaderBenchResult {
        data: data.display().to_string(),
        batch_size: batch,
        augment,
        params,
        open_seconds,
        epochs,
        images,
        seconds,
        images_per_second: images as f64 / seconds.max(1e-9),
    })
}

/// Time per operator type in the last `runs` model runs of an onnxruntime profile: (op type,
/// ms per run, share of all node time), most expensive first. The profile covers the session's
/// whole life, and its first runs (allocation, ~2x a steady step, one kernel up to 30x) would
/// otherwise rank the operators by warm-up cost.
pub fn top_ops(path: &Path, runs: usize) -> Result<Vec<(String, f64, f64)>, TrainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Output { path: path.to_path_buf(), message: e.to_string() })?;
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| TrainError::Output {
        path: path.to_path_buf(),
        message: format!("not an onnxruntime profile: {e}"),
    })?;
    Ok(op_times(&events, runs))
}

fn op_times(events: &[serde_json::Value], runs: usize) -> Vec<(String, f64, f64)> {
    let span = |e: &serde_json::Value| {
        let ts = e["ts"].as_f64().unwrap_or(0.0);
        (ts, ts + e["dur"].as_f64().unwrap_or(0.0))
    };
    let mut windows: Vec<(f64, f64)> =
        events.iter().filter(|e| e["cat"] == "Session" && e["name"] == "model_run").map(span).collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let kept = &windows[windows.len().saturating_sub(runs)..];
    let mut total: BTreeMap<String, f64> = BTreeMap::new();
    for e in events {
        if e["cat"] == "Node" && e["name"].as_str().is_some_and(|n| n.ends_with("_kernel_time")) {
            let (start, _) = span(e);
            if kept.iter().any(|&(a, b)| start >= a && start <= b) {
                let op = e["args"]["op_name"].as_str().unwrap_or("?").to_string();
                *total.entry(op).or_default() += e["dur"].as_f64().unwrap_or(0.0) / 1000.0 / kept.len() as f64;
            }
        }
    }
    let all: f64 = total.values().sum::<f64>().max(1e-9);
    let mut ops: Vec<(String, f64, f64)> = total.into_iter().map(|(op, ms)| (op, ms, ms / all)).collect();
    ops.sort_by(|a, b| b.1.total_cmp(&a.1));
    ops
}

#[cfg(test)]
mod tests {
    use super::op_times;
    use serde_json::json;

    fn node(op: &str, ts: f64, dur: f64) -> serde_json::Value {
        json!({"cat": "Node", "name": format!("{op}_1_kernel_time"), "ts": ts, "dur": dur, "args": {"op_name": op}})
    }

    #[test]
    fn op_times_count_only_the_last_runs_per_run() {
        let run = |ts: f64| json!({"cat": "Session", "name": "model_run", "ts": ts, "dur": 100.0});
        let events = vec![
            run(0.0),
            node("Conv", 10.0, 90_000.0), // the warm-up run's slow kernel
            run(1000.0),
            node("Conv", 1010.0, 3000.0),
            node("Mul", 1050.0, 1000.0),
            json!({"cat": "Node", "name": "Mul_1_fence_before", "ts": 1050.0, "dur": 7000.0, "args": {"op_name": "Mul"}}),
            run(2000.0),
            node("Conv", 2010.0, 5000.0),
            node("Mul", 2050.0, 1000.0),
        ];
        let ops = op_times(&events, 2);
        // Conv: (3 + 5) ms over 2 runs = 4 ms per run; Mul 1 ms (fences are not kernel time).
        assert_eq!(ops[0].0, "Conv");
        assert!((ops[0].1 - 4.0).abs() < 1e-9, "{ops:?}");
        let mul = ops.iter().find(|o| o.0 == "Mul").unwrap();
        assert!((mul.1 - 1.0).abs() < 1e-9);
        let share: f64 = ops.iter().map(|o| o.2).sum();
        assert!((share - 1.0).abs() < 1e-9);
        // All three runs: the warm-up kernel dominates.
        let all = op_times(&events, 3);
        assert!((all[0].1 - (90.0 + 3.0 + 5.0) / 3.0).abs() < 1e-9);
    }
}
