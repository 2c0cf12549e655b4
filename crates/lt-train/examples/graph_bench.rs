//! Training-step throughput of lt's training graph on onnxruntime's CPU provider.
//!
//! usage: cargo run --release -p lt-train --example graph_bench -- [ARCH] [BATCH] [STEPS] [THREADS] [cpu|cuda]
//! (defaults: densenet-bc-40-k12 64 10 2 cpu). Prints graph-building time, session creation
//! time and images/s over STEPS steps after 2 warm-up steps, on a fixed random batch.

use std::time::Instant;

use lt_graph::models::{Head, build};
use lt_graph::train::{Loss, Lowering, Sgd, TrainingGraphSpec, training_graph};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = args.first().map_or("densenet-bc-40-k12", String::as_str);
    let batch: usize = args.get(1).map_or(Ok(64), |s| s.parse())?;
    let steps: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let threads: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let lowering = if args.get(4).is_some_and(|s| s == "cuda") { Lowering::Cuda } else { Lowering::Cpu };
    let classes = 10;
    let t0 = Instant::now();
    let inference = build(arch, classes, Head::Linear, 0)?;
    let init = t0.elapsed();
    let t0 = Instant::now();
    let spec = TrainingGraphSpec {
        batch_size: batch,
        loss: Loss::CrossEntropy { label_smoothing: 0.0 },
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
        class_counts: vec![100; classes],
        lowering,
        mixed_labels: false,
    };
    let tg = training_graph(&inference, &spec)?;
    let bytes = lt_graph::onnx::encode(&tg.model);
    let build = t0.elapsed();
    let nodes = tg.model.graph.as_ref().map_or(0, |g| g.node.len());
    println!(
        "{arch}: model with seeded weights in {:.3}s; training graph built and encoded in {:.3}s ({nodes} nodes)",
        init.as_secs_f64(),
        build.as_secs_f64()
    );
    if steps == 0 {
        return Ok(());
    }
    let t1 = Instant::now();
    // PROFILE=prefix writes onnxruntime's per-node profile (prefix_<date>.json).
    let mut session = if let Ok(prof) = std::env::var("PROFILE") {
        let rt = lt_train::runtime::Runtime::get(false)?;
        ort::session::Session::builder(rt.environment())?
            .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
            .map_err(ort::Error::<()>::from)?
            .with_intra_threads(threads)
            .map_err(ort::Error::<()>::from)?
            .with_profiling(prof)
            .map_err(ort::Error::<()>::from)?
            .commit_from_memory(&bytes)?
    } else {
        lt_train::device::Device::Cpu.session(&bytes, threads)?
    };
    println!("session created in {:.2}s", t1.elapsed().as_secs_f64());
    let [c, h, w] = tg.image_shape;
    let mut seed = 1u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let images: Vec<f32> = (0..batch * c * h * w).map(|_| next()).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i % classes) as i64).collect();
    let mut state: Vec<Vec<f32>> = tg.state.iter().map(|s| s.init.clone()).collect();
    let mut run = |state: &mut Vec<Vec<f32>>| -> anyhow::Result<f32> {
        let mut inputs: Vec<(String, ort::session::SessionInputValue<'static>)> = vec![
            ("images".into(), ort::value::Tensor::from_array(([batch, c, h, w], images.clone()))?.into()),
            ("labels".into(), ort::value::Tensor::from_array(([batch], labels.clone()))?.into()),
            ("class_weights".into(), ort::value::Tensor::from_array(([classes], vec![1.0f32; classes]))?.into()),
            ("lr".into(), ort::value::Tensor::from_array(((), vec![0.05f32]))?.into()),
        ];
        for (s, v) in tg.state.iter().zip(state.iter()) {
            inputs.push((s.name.clone(), ort::value::Tensor::from_array((s.dims.clone(), v.clone()))?.into()));
        }
        let out = session.run(inputs)?;
        for (s, v) in tg.state.iter().zip(state.iter_mut()) {
            v.copy_from_slice(out[s.output.as_str()].try_extract_tensor::<f32>()?.1);
        }
        Ok(out["loss"].try_extract_tensor::<f32>()?.1[0])
    };
    for _ in 0..2 {
        run(&mut state)?;
    }
    let t2 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = run(&mut state)?;
    }
    let dt = t2.elapsed().as_secs_f64() / steps as f64;
    if std::env::var("PROFILE").is_ok() {
        println!("profile: {}", session.end_profiling()?);
    }
    println!(
        "{arch} batch {batch} threads {threads} {lowering:?}: {:.1} ms/step, {:.1} images/s (loss {loss:.3})",
        dt * 1e3,
        batch as f64 / dt
    );
    Ok(())
}
