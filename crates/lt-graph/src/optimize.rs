//! Graph-level clean-up that any model benefits from: merging equal constants, common
//! sub-expression elimination (CSE) and dead-node removal.
//!
//! Built graphs, and above all graphs derived from imported models, repeat work: the same
//! Reshape of a parameter for the forward and the backward pass, the same Transpose of a
//! weight, equal shape constants. Every node costs a kernel launch on CUDA and a few
//! microseconds of dispatch on the CPU, so the training graph goes through this pass.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx::proto::{ModelProto, NodeProto};

/// Ops whose outputs differ between two calls with equal inputs: never merged.
const NONDETERMINISTIC: [&str; 6] =
    ["RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial"];

/// What [`optimize`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptimizeStats {
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub initializers_before: usize,
    pub initializers_after: usize,
}

/// Merges equal constant initializers (those that are no graph input: a graph input with a
/// default value can be fed), bypasses Identity nodes, merges nodes that compute the same op with the same attributes
/// on the same inputs, and removes nodes and initializers no graph output depends on.
/// Graph inputs and outputs keep their names; a node that produces a graph output is kept.
pub fn optimize(model: &mut ModelProto) -> OptimizeStats {
    let Some(graph) = model.graph.as_mut() else {
        return OptimizeStats::default();
    };
    let mut stats = OptimizeStats {
        nodes_before: graph.node.len(),
        initializers_before: graph.initializer.len(),
        ..Default::default()
    };
    let inputs: HashSet<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let outputs: HashSet<String> = graph.output.iter().map(|v| v.name.clone()).collect();

    // Equal constants: the encoding of the tensor without its name is the key.
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut seen_tensors: HashMap<Vec<u8>, String> = HashMap::new();
    graph.initializer.retain(|t| {
        if inputs.contains(&t.name) || outputs.contains(&t.name) {
            return true;
        }
        let mut anonymous = t.clone();
        anonymous.name.clear();
        match seen_tensors.entry(anonymous.encode_to_vec()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                rename.insert(t.name.clone(), first.get().clone());
                false
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(t.name.clone());
                true
            }
        }
    });

    // CSE in one forward sweep (nodes are in topological order).
    let mut seen_nodes: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    let mut kept: Vec<NodeProto> = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        for i in node.input.iter_mut() {
            if let Some(r) = rename.get(i) {
                *i = r.clone();
            }
        }
        let is_output = node.output.iter().any(|o| outputs.contains(o));
        if node.op_type == "Identity" && node.domain.is_empty() && !is_output && node.input.len() == 1 {
            rename.insert(node.output[0].clone(), node.input[0].clone());
            continue;
        }
        let mergeable = !NONDETERMINISTIC.contains(&node.op_type.as_str())
            && !is_output
            && !node.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty());
        if mergeable {
            let key = node_key(&node);
            if let Some(first) = seen_nodes.get(&key) {
                for (o, f) in node.output.iter().zip(first) {
                    if !o.is_empty() {
                        rename.insert(o.clone(), f.clone());
                    }
                }
                continue;
            }
            seen_nodes.insert(key, node.output.clone());
        }
        kept.push(node);
    }

    // Dead nodes: walk back from the outputs.
    let mut live: HashSet<String> = outputs.clone();
    let mut alive = vec![false; kept.len()];
    for (k, node) in kept.iter().enumerate().rev() {
        if node.output.iter().any(|o| live.contains(o)) {
            alive[k] = true;
            live.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
        }
    }
    graph.node = kept.into_iter().zip(alive).filter_map(|(n, a)| a.then_some(n)).collect();
    graph.initializer.retain(|t| live.contains(&t.name) || inputs.contains(&t.name));
    let defined: HashSet<&String> = graph.node.iter().flat_map(|n| n.output.iter()).collect();
    graph.value_info.retain(|v| defined.contains(&v.name));
    stats.nodes_after = graph.node.len();
    stats.initializers_after = graph.initializer.len();
    stats
}

/// Op, domain, inputs, output count and attributes (sorted by name): equal keys compute
/// equal values.
fn node_key(node: &NodeProto) -> Vec<u8> {
    let mut attrs = node.attribute.clone();
    attrs.sort_by(|a, b| a.name.cmp(&b.name));
    let anonymous = NodeProto {
        op_type: node.op_type.clone(),
        domain: node.domain.clone(),
        input: node.input.clone(),
        output: vec![String::new(); node.output.len()],
        attribute: attrs,
        ..Default::default()
    };
    anonymous.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::DataType;
    use crate::onnx::{Attr, GraphBuilder, Tensor};

    #[test]
    fn merges_equal_nodes_and_constants_and_drops_dead_ones() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[2, 3]).unwrap();
        let s1 = g.initializer("s1", &Tensor::i64(&[2], vec![3, 2])).unwrap();
        let s2 = g.initializer("s2", &Tensor::i64(&[2], vec![3, 2])).unwrap();
        let a = g.op("Reshape", &[&x, &s1], &[]).unwrap();
        let b = g.op("Reshape", &[&x, &s2], &[]).unwrap(); // same as `a` once s2 = s1
        let t1 = g.op("Transpose", &[&a], &[("perm", Attr::Ints(vec![1, 0]))]).unwrap();
        let t2 = g.op("Transpose", &[&a], &[("perm", Attr::Ints(vec![0, 1]))]).unwrap(); // other attribute
        let _dead = g.op("Relu", &[&b], &[]).unwrap();
        let bi = g.op("Identity", &[&b], &[]).unwrap();
        let y = g.op("Add", &[&t1, &bi], &[]).unwrap();
        let z = g.op("Add", &[&t2, &t2], &[]).unwrap();
        g.output(&y, "y", DataType::Float, None).unwrap();
        g.output(&z, "z", DataType::Float, None).unwrap();
        let mut m = g.finish();
        let stats = optimize(&mut m);
        let graph = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        // The two output Identities name the graph outputs and stay.
        assert_eq!(ops, ["Reshape", "Transpose", "Transpose", "Add", "Add", "Identity", "Identity"]);
        assert_eq!(graph.initializer.len(), 1);
        assert_eq!(graph.node[3].input[1], graph.node[0].output[0], "Identity(b) was replaced by a");
        assert_eq!((stats.nodes_before, stats.nodes_after), (10, 7));
        // Idempotent.
        let again = optimize(&mut m);
        assert_eq!(again.nodes_before, again.nodes_after);
    }
}
