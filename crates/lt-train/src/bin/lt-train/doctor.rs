//! `lt-train doctor`: checks the onnxruntime installation end to end.

use anyhow::{Context, Result};
use lt_graph::onnx::proto::DataType;
use lt_graph::onnx::{GraphBuilder, Tensor};
use lt_train::runtime::Runtime;

pub fn doctor(gpu: bool) -> Result<()> {
    let rt = Runtime::get(gpu)?;
    println!("onnxruntime: {} (from {})", rt.library.display(), rt.source);
    println!("CUDA execution provider compiled in: {}", rt.has_cuda_provider()?);
    // y = relu(x · W + b) on a fixed input: exercises the writer, the loader and a session.
    let mut g = GraphBuilder::new("doctor");
    let x = g.input("x", DataType::Float, &[1, 2])?;
    let w = g.constant(&Tensor::f32(&[2, 2], vec![1.0, -1.0, 2.0, 0.5]));
    let b = g.constant(&Tensor::f32(&[2], vec![0.5, -4.0]));
    let xw = g.op("MatMul", &[&x, &w], &[])?;
    let y = g.op("Add", &[&xw, &b], &[])?;
    let y = g.op("Relu", &[&y], &[])?;
    g.output(&y, "y", DataType::Float, Some(&[1, 2]))?;
    let bytes = lt_graph::onnx::encode(&g.finish());
    let mut session = lt_train::device::Device::Cpu.session(&bytes, 1)?;
    let input = ort::value::Tensor::from_array(([1usize, 2], vec![1.0f32, 2.0]))?;
    let outputs = session.run(ort::inputs!["x" => input])?;
    let (_, y) = outputs["y"].try_extract_tensor::<f32>().context("reading output y")?;
    println!("test graph relu([1,2]·W + b) = {y:?} (expected [5.5, 0.0])");
    anyhow::ensure!(y == [5.5, 0.0], "onnxruntime returned {y:?} for the test graph, expected [5.5, 0.0]");
    println!("ok");
    Ok(())
}
