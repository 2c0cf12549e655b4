//! Import of exported ONNX classifiers: Identity/Constant/training-mode BN/Dropout forms are
//! normalised, logits are unchanged, initializer names kept, and unknown ops are named.

use std::collections::HashSet;

use lt_graph::import::import;
use lt_graph::models::{densenet, preset};
use lt_graph::onnx::proto::{AttributeProto, AttributeType, DataType, ModelProto, NodeProto};
use lt_graph::onnx::{Attr, Tensor, attribute};
use lt_graph::train::{Lowering, training_graph};

use crate::graph_util::{Rng, Trainer, ce, grad_sgd, spec};

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// densenet-tiny rewritten the way PyTorch exports look: Identity nodes in front of every
/// conv weight, the flatten as a Reshape with a Constant shape, a Dropout before the head,
/// and the initializers also listed as graph inputs.
fn exported_like(classes: usize) -> (ModelProto, ModelProto) {
    let original = densenet(&preset("densenet-tiny", classes).unwrap(), 9).unwrap();
    let mut m = original.clone();
    let g = m.graph.as_mut().unwrap();
    let mut nodes = Vec::new();
    for (i, mut n) in std::mem::take(&mut g.node).into_iter().enumerate() {
        match n.op_type.as_str() {
            "Conv" => {
                let alias = format!("onnx::Conv_{i}");
                nodes.push(node("Identity", &format!("/Identity_{i}"), &[&n.input[1]], &[&alias], vec![]));
                n.input[1] = alias;
                nodes.push(n);
            }
            "Flatten" => {
                let shape = format!("/Constant_{i}_output_0");
                let mut value = attribute("value", &Attr::Tensor(Tensor::i64(&[2], vec![-1, 0])));
                value.r#type = AttributeType::Tensor as i32;
                nodes.push(node("Constant", &format!("/Constant_{i}"), &[], &[&shape], vec![value]));
                let reshaped = format!("/Reshape_{i}_output_0");
                nodes.push(node("Reshape", &format!("/Reshape_{i}"), &[&n.input[0], &shape], &[&reshaped], vec![]));
                // Ratio 0 (a float Constant): training graph and eval graph agree exactly.
                let ratio = format!("/Constant_ratio_{i}");
                let mut value = attribute("value", &Attr::Tensor(Tensor::F32 { dims: vec![], data: vec![0.0] }));
                value.r#type = AttributeType::Tensor as i32;
                nodes.push(node("Constant", &format!("/Constant_r{i}"), &[], &[&ratio], vec![value]));
                nodes.push(node(
                    "Dropout",
                    &format!("/Dropout_{i}"),
                    &[&reshaped, &ratio],
                    &[n.output[0].as_str()],
                    vec![],
                ));
            }
            _ => nodes.push(n),
        }
    }
    g.node = nodes;
    let inits: Vec<_> = g
        .initializer
        .iter()
        .map(|t| lt_graph::onnx::value_info(&t.name, lt_graph::onnx::proto::DataType::Float, Some(&t.dims)))
        .collect();
    g.input.extend(inits);
    (original, m)
}

fn logits(model: &ModelProto, images: &[f32], b: usize) -> Vec<f32> {
    let bytes = lt_graph::onnx::encode(model);
    let mut s = lt_train::device::Device::Cpu.session(&bytes, 2).unwrap();
    let out = s
        .run(ort::inputs!["images" => ort::value::Tensor::from_array(([b, 3, 32, 32], images.to_vec())).unwrap()])
        .unwrap();
    out["logits"].try_extract_tensor::<f32>().unwrap().1.to_vec()
}

#[test]
fn imported_model_keeps_logits_and_names_and_trains() {
    let (original, exported) = exported_like(6);
    let imported = import(&exported).unwrap();
    let ig = imported.graph.as_ref().unwrap();
    let outs: HashSet<&str> = ig.output.iter().map(|o| o.name.as_str()).collect();
    for n in &ig.node {
        assert!(n.op_type != "Constant", "Constant node {} left", n.name);
        // Only an Identity that names a graph output may stay.
        assert!(n.op_type != "Identity" || outs.contains(n.output[0].as_str()), "Identity {} left", n.name);
    }
    let names =
        |m: &ModelProto| m.graph.as_ref().unwrap().initializer.iter().map(|t| t.name.clone()).collect::<HashSet<_>>();
    assert!(names(&original).is_subset(&names(&imported)), "initializer names were not preserved");
    let images = Rng::new(3).normals(3 * 3 * 32 * 32);
    let (a, b) = (logits(&original, &images, 3), logits(&imported, &images, 3));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff < 1e-5, "imported logits differ by {diff}");
    // The imported model trains like the built-in one (same gradients).
    let s = spec(4, 6, ce(), grad_sgd(), Lowering::Cpu);
    let mut t1 = Trainer::new(&original, &s, 5);
    let mut t2 = Trainer::new(&imported, &s, 5);
    let st = t1.state.clone();
    let (o1, o2) = (t1.run_with(&st, 0.1), t2.run_with(&st, 0.1));
    assert!((o1["loss"][0] - o2["loss"][0]).abs() < 1e-6);
    for s in &t1.tg.state {
        let d = o1[&s.output].iter().zip(&o2[&s.output]).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d < 1e-5, "{}: {d}", s.output);
    }
}

#[test]
fn training_mode_batchnorm_is_imported_in_inference_form() {
    let (_, mut exported) = exported_like(3);
    let g = exported.graph.as_mut().unwrap();
    for n in g.node.iter_mut().filter(|n| n.op_type == "BatchNormalization") {
        n.attribute.push(attribute("training_mode", &Attr::Int(1)));
        let o = n.output[0].clone();
        n.output.push(format!("{o}_running_mean"));
        n.output.push(format!("{o}_running_var"));
    }
    let imported = import(&exported).unwrap();
    for n in imported.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == "BatchNormalization") {
        assert_eq!(n.output.len(), 1, "{}", n.name);
        assert!(n.attribute.iter().all(|a| a.name != "training_mode"));
    }
    training_graph(&imported, &spec(2, 3, ce(), grad_sgd(), Lowering::Cuda)).unwrap();
}

#[test]
fn unsupported_ops_are_named_with_their_node() {
    let (_, mut exported) = exported_like(3);
    let g = exported.graph.as_mut().unwrap();
    let i = g.node.iter().position(|n| n.op_type == "Relu").unwrap();
    g.node[i].op_type = "Sigmoid".into();
    g.node[i].name = "/features/act0/Sigmoid".into();
    let err = import(&exported).unwrap_err().to_string();
    assert!(err.contains("Sigmoid") && err.contains("/features/act0/Sigmoid"), "{err}");
    let mut foreign = exported.clone();
    let g = foreign.graph.as_mut().unwrap();
    g.node[i].op_type = "Relu".into();
    g.node[i].domain = "com.microsoft".into();
    let err = import(&foreign).unwrap_err().to_string();
    assert!(err.contains("com.microsoft"), "{err}");
}

/// A committed PyTorch export (tests/golden/export_models.py: graphs without weight data),
/// every stripped float initializer re-filled with seeded values of its dims: BatchNorm
/// running variances 1, scales 1, shifts and running means 0, the rest He-normal by fan-in.
fn exported(file: &str) -> ModelProto {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/exported").join(file);
    let mut m = lt_graph::onnx::load(&path).unwrap();
    let g = m.graph.as_mut().unwrap();
    let bn: HashSet<String> =
        g.node.iter().filter(|n| n.op_type == "BatchNormalization").flat_map(|n| n.input[1..].to_vec()).collect();
    let mut rng = Rng::new(11);
    for t in g.initializer.iter_mut() {
        let n: i64 = t.dims.iter().product();
        if t.data_type != DataType::Float as i32 || n <= 1 || !t.raw_data.is_empty() || !t.float_data.is_empty() {
            continue;
        }
        let v: Vec<f32> = if bn.contains(&t.name) {
            let one = t.name.ends_with("running_var") || t.name.ends_with(".weight");
            vec![if one { 1.0 } else { 0.0 }; n as usize]
        } else if t.dims.len() == 1 {
            vec![0.0; n as usize]
        } else {
            let fan_in: i64 = t.dims[1..].iter().product();
            let std = (2.0 / fan_in as f64).sqrt() as f32;
            rng.normals(n as usize).iter().map(|v| v * std).collect()
        };
        t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }
    m
}

/// Imports an export, checks that its PyTorch initializer names are kept and that no shape
/// subgraph is left, and trains a few SGD steps on one fixed batch: the loss must be finite
/// and fall below `fall` x the first.
fn imports_and_trains(file: &str, names: &[&str], batch: usize, steps: usize, fall: f32) {
    let m = exported(file);
    let imported = import(&m).unwrap_or_else(|e| panic!("{file}: {e}"));
    let g = imported.graph.as_ref().unwrap();
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    for n in names {
        assert!(inits.contains(n), "{file}: initializer {n} was renamed or dropped");
    }
    for n in &g.node {
        assert!(
            !["Shape", "Gather", "Unsqueeze", "ConstantOfShape", "Cast", "Transpose", "Concat"]
                .contains(&n.op_type.as_str()),
            "{file}: {} {} was not folded",
            n.op_type,
            n.name
        );
    }
    let sgd = lt_graph::train::Sgd { momentum: 0.9, nesterov: false, weight_decay: 2e-4, decay_bn_and_bias: true };
    let mut t = Trainer::new(&imported, &spec(batch, 10, ce(), sgd, Lowering::Cpu), 4);
    // Every exported parameter is trained under its PyTorch name.
    let params: HashSet<String> = t.params().into_iter().collect();
    for n in names {
        assert!(params.contains(*n), "{file}: {n} is not a trained parameter (have {params:?})");
    }
    let losses: Vec<f32> = (0..steps).map(|_| t.step(0.05)).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{file}: losses {losses:?}");
    assert!(losses[steps - 1] < fall * losses[0], "{file}: the loss did not fall: {losses:?}");
}

#[test]
fn torchscript_export_of_ldam_resnet32_imports_and_trains() {
    imports_and_trains(
        "resnet32_torchscript.onnx",
        &["conv1.weight", "bn1.weight", "layer2.0.conv1.weight", "layer3.4.bn2.bias", "linear.weight", "linear.bias"],
        8,
        6,
        0.8,
    );
}

#[test]
fn torchscript_export_of_ldam_resnet32_with_normed_linear_imports_and_trains() {
    // NormedLinear's logits are cosines without a scale (LDAM multiplies by s in its loss):
    // within [-1, 1], so cross-entropy cannot fall far from log 10 in a few steps.
    imports_and_trains(
        "resnet32_normed_torchscript.onnx",
        &["conv1.weight", "layer3.0.bn1.weight", "linear.weight"],
        8,
        6,
        0.97,
    );
}

#[test]
fn torchscript_export_of_torchvision_resnet18_imports_and_trains() {
    imports_and_trains(
        "resnet18_torchscript.onnx",
        &["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias"],
        4,
        6,
        0.8,
    );
}

#[test]
fn default_dynamo_export_imports_with_batch_free_shapes() {
    // torch 2.15's default exporter bakes the batch (2) into Reshape and Expand targets; the
    // imported graph must run at other batch sizes.
    imports_and_trains("resnet32_normed_default.onnx", &["conv1.weight", "layer3.4.conv2.weight"], 5, 6, 0.97);
}
