//! Graph-level clean-up that any model benefits from, as named passes: merging equal
//! constants, bypassing Identity nodes, common sub-expression elimination (CSE) and
//! dead-node removal.
//!
//! Built graphs, and above all graphs derived from imported models, repeat work: the same
//! Reshape of a parameter for the forward and the backward pass, the same Transpose of a
//! weight, equal shape constants. Every node costs a kernel launch on CUDA and a few
//! microseconds of dispatch on the CPU, so the training graph goes through this pass.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};

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

/// Runs the passes in order: [`merge_equal_constants`], [`bypass_identities`],
/// [`eliminate_common_subexpressions`], [`remove_dead_nodes`]. Graph inputs and outputs keep
/// their names; a node that produces a graph output is kept.
pub fn optimize(model: &mut ModelProto) -> OptimizeStats {
    let Some(graph) = model.graph.as_mut() else {
        return OptimizeStats::default();
    };
    let (nodes_before, initializers_before) = (graph.node.len(), graph.initializer.len());
    merge_equal_constants(graph);
    bypass_identities(graph);
    eliminate_common_subexpressions(graph);
    remove_dead_nodes(graph);
    OptimizeStats {
        nodes_before,
        nodes_after: graph.node.len(),
        initializers_before,
        initializers_after: graph.initializer.len(),
    }
}

fn graph_outputs(graph: &GraphProto) -> HashSet<String> {
    graph.output.iter().map(|v| v.name.clone()).collect()
}

/// Points every node input renamed in `rename` at its new name.
fn rename_inputs(node: &mut NodeProto, rename: &HashMap<String, String>) {
    for i in node.input.iter_mut() {
        if let Some(r) = rename.get(i) {
            *i = r.clone();
        }
    }
}

/// Keeps the first of equal constant initializers and points the nodes using the others at
/// it. Equal: the same protobuf encoding without the name (element type, dims, data). An
/// initializer that is a graph input (a default value that can be fed) or a graph output
/// is left alone.
fn merge_equal_constants(graph: &mut GraphProto) {
    let inputs: HashSet<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let outputs = graph_outputs(graph);
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<Vec<u8>, String> = HashMap::new();
    graph.initializer.retain(|t| {
        if inputs.contains(&t.name) || outputs.contains(&t.name) {
            return true;
        }
        let mut anonymous = t.clone();
        anonymous.name.clear();
        match seen.entry(anonymous.encode_to_vec()) {
            Entry::Occupied(first) => {
                rename.insert(t.name.clone(), first.get().clone());
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(t.name.clone());
                true
            }
        }
    });
    for node in &mut graph.node {
        rename_inputs(node, &rename);
    }
}

/// Removes Identity nodes (default domain, one input) whose output is no graph output; their
/// readers read the Identity's input.
fn bypass_identities(graph: &mut GraphProto) {
    let outputs = graph_outputs(graph);
    let mut rename: HashMap<String, String> = HashMap::new();
    graph.node.retain_mut(|node| {
        rename_inputs(node, &rename);
        let bypass = node.op_type == "Identity"
            && node.domain.is_empty()
            && node.input.len() == 1
            && !node.output.iter().any(|o| outputs.contains(o));
        if bypass {
            rename.insert(node.output[0].clone(), node.input[0].clone());
        }
        !bypass
    });
}

/// Common sub-expression elimination in one forward sweep (nodes are in topological
/// order): a node computing the same op with the same attributes on the same inputs as an
/// earlier one is removed and its readers read the earlier node's outputs. Random ops,
/// nodes with subgraphs and nodes producing graph outputs are never merged.
fn eliminate_common_subexpressions(graph: &mut GraphProto) {
    let outputs = graph_outputs(graph);
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    graph.node.retain_mut(|node| {
        rename_inputs(node, &rename);
        let mergeable = !NONDETERMINISTIC.contains(&node.op_type.as_str())
            && !node.output.iter().any(|o| outputs.contains(o))
            && !node.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty());
        if !mergeable {
            return true;
        }
        let key = node_key(node);
        if let Some(first) = seen.get(&key) {
            for (o, f) in node.output.iter().zip(first) {
                if !o.is_empty() {
                    rename.insert(o.clone(), f.clone());
                }
            }
            return false;
        }
        seen.insert(key, node.output.clone());
        true
    });
}

/// Removes the nodes no graph output depends on (walking back from the outputs), the
/// initializers only they read (graph inputs stay), and the value infos of removed values.
fn remove_dead_nodes(graph: &mut GraphProto) {
    let inputs: HashSet<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let mut live = graph_outputs(graph);
    let mut alive = vec![false; graph.node.len()];
    for (k, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| live.contains(o)) {
            alive[k] = true;
            live.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
        }
    }
    let mut alive = alive.into_iter();
    graph.node.retain(|_| alive.next().unwrap_or(false));
    graph.initializer.retain(|t| live.contains(&t.name) || inputs.contains(&t.name));
    let defined: HashSet<&String> = graph.node.iter().flat_map(|n| n.output.iter()).collect();
    graph.value_info.retain(|v| defined.contains(&v.name));
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
    fn ops(m: &ModelProto) -> Vec<&str> {
        m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect()
    }

    #[test]
    fn equal_constants_are_merged_unless_they_can_be_fed() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[2]).unwrap();
        let fed = g.input("fed", DataType::Float, &[2]).unwrap();
        let a = g.initializer("a", &Tensor::f32(&[2], vec![1.0, 2.0])).unwrap();
        let b = g.initializer("b", &Tensor::f32(&[2], vec![1.0, 2.0])).unwrap();
        let c = g.initializer("c", &Tensor::f32(&[1, 2], vec![1.0, 2.0])).unwrap(); // other dims
        let s = g.op("Sum", &[&x, &a, &b, &c, &fed], &[]).unwrap();
        g.output(&s, "s", DataType::Float, None).unwrap();
        let mut m = g.finish();
        let graph = m.graph.as_mut().unwrap();
        // An input with a default value: equal to `a`, but it can be fed.
        graph.initializer.push(Tensor::f32(&[2], vec![1.0, 2.0]).to_proto("fed"));
        merge_equal_constants(graph);
        let names: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "fed"]);
        assert_eq!(graph.node[0].input, ["x", "a", "a", "c", "fed"]);
    }

    #[test]
    fn identities_are_bypassed_except_those_naming_outputs() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[2]).unwrap();
        let i1 = g.op("Identity", &[&x], &[]).unwrap();
        let i2 = g.op("Identity", &[&i1], &[]).unwrap();
        let r = g.op("Relu", &[&i2], &[]).unwrap();
        g.output(&r, "y", DataType::Float, None).unwrap();
        let mut m = g.finish();
        bypass_identities(m.graph.as_mut().unwrap());
        assert_eq!(ops(&m), ["Relu", "Identity"]);
        assert_eq!(m.graph.as_ref().unwrap().node[0].input, ["x"]);
    }

    #[test]
    fn cse_merges_equal_nodes_only() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[2, 3]).unwrap();
        let perm = |p: &[i64]| ("perm", Attr::Ints(p.to_vec()));
        let t1 = g.op("Transpose", &[&x], &[perm(&[1, 0])]).unwrap();
        let t2 = g.op("Transpose", &[&x], &[perm(&[1, 0])]).unwrap(); // same as t1
        let t3 = g.op("Transpose", &[&x], &[perm(&[0, 1])]).unwrap(); // other attribute
        let r1 = g.op("RandomNormalLike", &[&t1], &[]).unwrap();
        let r2 = g.op("RandomNormalLike", &[&t2], &[]).unwrap(); // random: never merged
        let s = g.op("Sum", &[&t2, &t3, &r1, &r2], &[]).unwrap();
        g.output(&s, "s", DataType::Float, None).unwrap();
        let mut m = g.finish();
        eliminate_common_subexpressions(m.graph.as_mut().unwrap());
        assert_eq!(ops(&m), ["Transpose", "Transpose", "RandomNormalLike", "RandomNormalLike", "Sum", "Identity"]);
        let graph = m.graph.as_ref().unwrap();
        assert_eq!(graph.node[3].input[0], t1, "the second random op reads t1");
        assert_eq!(graph.node[4].input[0], t1, "t2 was replaced by t1");
    }

    #[test]
    fn dead_nodes_and_their_initializers_go() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[2]).unwrap();
        let w = g.initializer("w", &Tensor::f32(&[2], vec![1.0, 2.0])).unwrap();
        let v = g.initializer("v", &Tensor::f32(&[2], vec![3.0, 4.0])).unwrap();
        let dead = g.op("Mul", &[&x, &w], &[]).unwrap();
        let y = g.op("Add", &[&x, &v], &[]).unwrap();
        g.output(&y, "y", DataType::Float, None).unwrap();
        let mut m = g.finish();
        let graph = m.graph.as_mut().unwrap();
        graph.value_info.push(crate::onnx::value_info(&dead, DataType::Float, None));
        remove_dead_nodes(graph);
        assert_eq!(ops(&m), ["Add", "Identity"]);
        let graph = m.graph.as_ref().unwrap();
        assert_eq!(graph.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["v"]);
        assert!(graph.value_info.is_empty());
    }
}
