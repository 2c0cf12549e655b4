//! Evaluating any ONNX image classifier on a dataset's test split (`lt-train eval`).

use std::path::Path;
use std::sync::Arc;

use lt_eval::{ClassificationReport, ConfusionMatrix, classification_report};
use lt_graph::onnx::proto::{ModelProto, tensor_shape_proto::dimension::Value, type_proto};
use ort::value::Tensor;

use crate::dataset::Dataset;
use crate::device::Device;
use crate::loader::{Augment, BatchMaker, Normalization};
use crate::record::Predictions;
use crate::train::TrainError;

/// The report and the predictions of `model` on the test split of `data`.
pub fn evaluate_model(
    model_path: &Path,
    data: &Dataset,
    norm: Option<Normalization>,
    device: &Device,
    threads: usize,
    batch: usize,
) -> Result<(ClassificationReport, Predictions), TrainError> {
    let model = lt_graph::onnx::load(model_path)?;
    let (input, dims) = first_input(&model).ok_or_else(|| {
        TrainError::Setup(format!("{}: the model has no tensor input to feed images to", model_path.display()))
    })?;
    let shape = data.info.image_shape;
    if dims.len() != 4 || dims[1..].iter().zip(shape).any(|(d, s)| d.is_some_and(|d| d as usize != s)) {
        return Err(TrainError::Setup(format!(
            "{}: input `{input}` has shape {dims:?}, the dataset's images are {shape:?} (NCHW)",
            model_path.display()
        )));
    }
    // A model exported with a fixed batch runs in chunks of that size (the last one padded).
    let chunk = dims[0].map_or(batch, |b| b as usize);
    let output = model.graph.as_ref().and_then(|g| g.output.first()).map(|o| o.name.clone()).unwrap_or_default();
    let mut session = device.session(&lt_graph::onnx::encode(&model), threads)?;
    let norm = norm.unwrap_or_else(|| Normalization::of(&data.train, &data.subset, shape));
    let maker = BatchMaker { split: Arc::new(data.test.clone()), shape, norm, augment: Augment::None, seed: 0 };
    let c = data.num_classes();
    let idx: Vec<u32> = (0..data.test.len() as u32).collect();
    let mut pred = Predictions { num_classes: c, ..Default::default() };
    let image_len: usize = shape.iter().product();
    for part in idx.chunks(chunk) {
        let mut b = maker.make(0, 0, part);
        b.images.resize(chunk.max(part.len()) * image_len, 0.0);
        let n = b.images.len() / image_len;
        let ort_err = |e: ort::Error| TrainError::Runtime(e.into());
        let t = Tensor::from_array(([n, shape[0], shape[1], shape[2]], b.images)).map_err(ort_err)?;
        let outputs = session.run(ort::inputs![input.as_str() => t]).map_err(ort_err)?;
        let (oshape, logits) = outputs[output.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
        if oshape.len() != 2 || oshape[1] as usize != c {
            return Err(TrainError::Setup(format!(
                "{}: output `{output}` has shape {:?}, expected [N, {c}] for the dataset's {c} classes",
                model_path.display(),
                oshape.to_vec()
            )));
        }
        for (k, &i) in part.iter().enumerate() {
            let row = &logits[k * c..(k + 1) * c];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = row.iter().map(|z| (z - m).exp()).collect();
            let s: f32 = e.iter().sum();
            pred.scores.extend(e.iter().map(|v| v / s));
            pred.index.push(i);
            pred.label.push(data.test.labels[i as usize]);
            let best = row.iter().enumerate().fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
            pred.prediction.push(best as u16);
        }
    }
    let labels: Vec<usize> = pred.label.iter().map(|&l| l as usize).collect();
    let preds: Vec<usize> = pred.prediction.iter().map(|&p| p as usize).collect();
    Ok((classification_report(&ConfusionMatrix::from_predictions(&labels, &preds, c)), pred))
}

/// The first graph input that is not an initializer, with its dims (None = symbolic).
fn first_input(model: &ModelProto) -> Option<(String, Vec<Option<i64>>)> {
    let g = model.graph.as_ref()?;
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let input = g.input.iter().find(|i| !inits.contains(i.name.as_str()))?;
    let type_proto::Value::TensorType(t) = input.r#type.as_ref()?.value.as_ref()?;
    let dims = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Some(v),
            _ => None,
        })
        .collect();
    Some((input.name.clone(), dims))
}
