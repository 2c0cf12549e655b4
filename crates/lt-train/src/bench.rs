//! Training-step throughput on device-resident state (`lt-train bench`), and the loader's
//! throughput on its own (`lt-train bench-loader`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use lt_graph::train::{ConvGrad, Loss, Sgd, TrainingGraphSpec};

use std::sync::Arc;

use crate::dataset::Dataset;
use crate::device::Device;
use crate::engine::Engine;
use crate::loader::{Augment, BatchMaker, Normalization, Prefetcher, epoch_order};
use crate::train::TrainError;

/// What the bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub arch: String,
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
    /// (op type, total ms, share of all node time) from the profile, most expensive first.
    pub top_ops: Vec<(String, f64, f64)>,
}

/// Builds the training graph of `arch` for `batch` images and times `steps` steps after
/// `warmup` steps, on a fixed random batch (the loader is not part of the figure).
#[allow(clippy::too_many_arguments)]
pub fn bench(
    arch: &str,
    classes: usize,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &Device,
    threads: usize,
    profile: Option<&Path>,
) -> Result<BenchResult, TrainError> {
    let t0 = Instant::now();
    let inference = lt_graph::models::densenet(&lt_graph::models::preset(arch, classes)?, 0)?;
    let spec = TrainingGraphSpec {
        batch_size: batch,
        loss: Loss::CrossEntropy { label_smoothing: 0.0 },
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
        class_counts: vec![100; classes],
        conv_grad: if device.is_cpu() { ConvGrad::Cpu } else { ConvGrad::Cuda },
    };
    let graph = lt_graph::train::training_graph(&inference, &spec)?;
    let graph_build_seconds = t0.elapsed().as_secs_f64();
    let mut engine = Engine::with_profile(&graph, &inference, device, threads, profile)?;
    let [c, h, w] = graph.image_shape;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let images: Vec<f32> = (0..batch * c * h * w).map(|_| next()).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i % classes) as i64).collect();
    let weights = vec![1.0f32; classes];
    for _ in 0..warmup {
        engine.step(&images, &labels, &weights, 0.01)?;
    }
    let t1 = Instant::now();
    for _ in 0..steps {
        engine.step(&images, &labels, &weights, 0.01)?;
    }
    let secs = t1.elapsed().as_secs_f64();
    let top_ops = match profile {
        Some(_) => top_ops(Path::new(&engine.end_profiling()?))?,
        None => Vec::new(),
    };
    Ok(BenchResult {
        arch: arch.to_string(),
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
        top_ops,
    })
}

/// What the loader bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoaderBenchResult {
    pub data: String,
    pub batch_size: usize,
    pub augment: Augment,
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
pub fn loader(
    data: &Path,
    batch: usize,
    epochs: usize,
    augment: Augment,
    seed: u64,
) -> Result<LoaderBenchResult, TrainError> {
    let t0 = Instant::now();
    let dataset = Dataset::open(data)?;
    let shape = dataset.info.image_shape;
    let norm = Normalization::of(&dataset.train, &dataset.subset, shape);
    let open_seconds = t0.elapsed().as_secs_f64();
    let maker = BatchMaker { split: Arc::new(dataset.train), shape, norm, augment, seed };
    let t1 = Instant::now();
    let (mut images, mut checksum) = (0usize, 0f64);
    for epoch in 0..epochs {
        let order = epoch_order(&dataset.subset, seed, epoch, true);
        for b in Prefetcher::start(maker.clone(), epoch, order, batch, 0) {
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
        open_seconds,
        epochs,
        images,
        seconds,
        images_per_second: images as f64 / seconds.max(1e-9),
    })
}

/// Total time per operator type from an onnxruntime profile (node events, `dur` in µs).
pub fn top_ops(path: &Path) -> Result<Vec<(String, f64, f64)>, TrainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Output { path: path.to_path_buf(), message: e.to_string() })?;
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| TrainError::Output {
        path: path.to_path_buf(),
        message: format!("not an onnxruntime profile: {e}"),
    })?;
    let mut total: BTreeMap<String, f64> = BTreeMap::new();
    for e in &events {
        if e["cat"] == "Node" && e["name"].as_str().is_some_and(|n| n.ends_with("_kernel_time")) {
            let op = e["args"]["op_name"].as_str().unwrap_or("?").to_string();
            *total.entry(op).or_default() += e["dur"].as_f64().unwrap_or(0.0) / 1000.0;
        }
    }
    let all: f64 = total.values().sum::<f64>().max(1e-9);
    let mut ops: Vec<(String, f64, f64)> = total.into_iter().map(|(op, ms)| (op, ms, ms / all)).collect();
    ops.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(ops)
}
