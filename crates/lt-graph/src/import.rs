//! Import of ONNX image classifiers (e.g. PyTorch exports) as inference models that
//! [`crate::train::training_graph`] accepts, initializer names preserved.

use std::collections::{HashMap, HashSet};

mod fold;

use crate::GraphError;
use crate::onnx::Tensor;
use crate::onnx::proto::{DataType, ModelProto, TensorProto, tensor_shape_proto, type_proto};
use crate::train::{Loss, Lowering, Sgd, TrainingGraphSpec, supported_ops, training_graph};

/// Normalises `model` for training:
/// - Constant nodes become initializers, Identity nodes are bypassed (PyTorch puts them
///   around shared initializers), training-mode BatchNormalization becomes the inference form
///   (its running statistics are kept), Dropout loses its mask output;
/// - initializers listed as graph inputs (old exporters) are removed from the inputs, and the
///   image input gets a symbolic batch dimension `N`;
/// - shape subgraphs (Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Cast, Reshape,
///   Transpose, Slice and integer arithmetic over constants) are folded to initializers, the
///   exported image shape being static, and batch sizes baked into Reshape/Expand targets
///   are made batch-free (see `fold`);
/// - every op left must be one of [`supported_ops`] in the default domain (else an error
///   naming the op and the node).
///
/// The result is checked by building a small training graph from it.
pub fn import(model: &ModelProto) -> Result<ModelProto, GraphError> {
    let mut model = model.clone();
    let graph = model.graph.as_mut().ok_or_else(|| GraphError::Model("the model has no graph".into()))?;
    for n in &graph.node {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(GraphError::Unsupported {
                node: n.name.clone(),
                op: n.op_type.clone(),
                message: format!("domain `{}` is not supported; lt trains standard ai.onnx ops only", n.domain),
            });
        }
    }
    // Constant nodes -> initializers.
    let mut nodes = Vec::new();
    for n in std::mem::take(&mut graph.node) {
        if n.op_type == "Constant" {
            let t = constant_tensor(&n).ok_or_else(|| GraphError::Unsupported {
                node: n.name.clone(),
                op: n.op_type.clone(),
                message: "only Constant nodes with a `value`, `value_int`, `value_ints` or `value_float` are supported"
                    .into(),
            })?;
            let mut t = t;
            t.name = n.output[0].clone();
            graph.initializer.push(t);
        } else {
            nodes.push(n);
        }
    }
    // Bypass Identity nodes whose output is not a graph output.
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut alias: HashMap<String, String> = HashMap::new();
    let resolve = |alias: &HashMap<String, String>, mut v: String| {
        while let Some(a) = alias.get(&v) {
            v = a.clone();
        }
        v
    };
    let mut kept = Vec::new();
    for mut n in nodes {
        for i in n.input.iter_mut() {
            *i = resolve(&alias, i.clone());
        }
        if n.op_type == "Identity" && !outputs.contains(&n.output[0]) {
            alias.insert(n.output[0].clone(), n.input[0].clone());
            continue;
        }
        match n.op_type.as_str() {
            "BatchNormalization" => {
                n.output.truncate(1);
                n.attribute.retain(|a| a.name != "training_mode");
            }
            "Dropout" => n.output.truncate(1),
            _ => {}
        }
        kept.push(n);
    }
    graph.node = kept;
    // Inputs: drop initializers, make the batch dimension symbolic.
    let inits: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    graph.input.retain(|i| !inits.contains(&i.name));
    if graph.input.len() != 1 {
        return Err(GraphError::Model(format!(
            "an image classifier has one input, this model has {}: {:?}",
            graph.input.len(),
            graph.input.iter().map(|i| i.name.as_str()).collect::<Vec<_>>()
        )));
    }
    // Folding reads the exported (static) batch, so it runs before the batch goes symbolic.
    fold::fold(graph)?;
    for n in &graph.node {
        if !supported_ops().contains(&n.op_type.as_str()) {
            return Err(GraphError::Unsupported {
                node: n.name.clone(),
                op: n.op_type.clone(),
                message: format!(
                    "op {} cannot be trained by lt; supported ops: {}",
                    n.op_type,
                    supported_ops().join(", ")
                ),
            });
        }
    }
    if let Some(type_proto::Value::TensorType(t)) = graph.input[0].r#type.as_mut().and_then(|t| t.value.as_mut()) {
        if t.elem_type != DataType::Float as i32 {
            return Err(GraphError::Model(format!("input `{}` must be float32 images", graph.input[0].name)));
        }
        if let Some(d) = t.shape.as_mut().and_then(|s| s.dim.first_mut()) {
            d.value = Some(tensor_shape_proto::dimension::Value::DimParam("N".into()));
        }
    }
    if graph.output.is_empty() {
        return Err(GraphError::Model("the model has no output".into()));
    }
    graph.output.truncate(1);
    // Check: a small training graph must build.
    let classes = output_classes(&model)?;
    let spec = TrainingGraphSpec {
        batch_size: 2,
        loss: Loss::CrossEntropy { label_smoothing: 0.0 },
        sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.0, decay_bn_and_bias: true },
        class_counts: vec![1; classes],
        lowering: Lowering::Cpu,
        mixed_labels: false,
    };
    training_graph(&model, &spec)?;
    Ok(model)
}

/// The value of a Constant node as a tensor (`value`, or the scalar/list attributes the
/// TorchScript exporter also writes).
fn constant_tensor(n: &crate::onnx::proto::NodeProto) -> Option<TensorProto> {
    let a = n.attribute.first()?;
    match a.name.as_str() {
        "value" => a.t.clone(),
        "value_int" => Some(Tensor::i64(&[], vec![a.i]).to_proto("")),
        "value_ints" => Some(Tensor::i64(&[a.ints.len() as i64], a.ints.clone()).to_proto("")),
        "value_float" => Some(Tensor::f32(&[], vec![a.f]).to_proto("")),
        _ => None,
    }
}

/// Number of classes: the last dimension of the model's first output, when declared.
pub fn output_classes(model: &ModelProto) -> Result<usize, GraphError> {
    let out = model
        .graph
        .as_ref()
        .and_then(|g| g.output.first())
        .ok_or_else(|| GraphError::Model("the model has no output".into()))?;
    match out.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            match t.shape.as_ref().and_then(|s| s.dim.last()).and_then(|d| d.value.clone()) {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) if v > 1 => Ok(v as usize),
                _ => Err(GraphError::Model(format!(
                    "output `{}` does not declare a static class dimension [N, C]; re-export with a fixed number of classes",
                    out.name
                ))),
            }
        }
        _ => Err(GraphError::Model(format!("output `{}` is not a tensor", out.name))),
    }
}
