//! Import of exported ONNX classifiers: Identity/Constant/training-mode BN/Dropout forms are
//! normalised, logits are unchanged, initializer names kept, and unknown ops are named.

use std::collections::HashSet;

use lt_graph::import::import;
use lt_graph::models::{densenet, preset};
use lt_graph::onnx::proto::{AttributeProto, AttributeType, ModelProto, NodeProto};
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
