//! The typed emitter the training graph is written with: values are [`Value`] handles (an
//! index into the emitter's table of values, each with its name, shape and element type),
//! and every op is wired through [`Emitter::wire`], which infers the output facts
//! (`infer.rs`) the way tract's `wire_node` does with `output_facts`. No call site computes
//! an output shape by hand, and multi-output nodes go through the same path
//! ([`Emitter::wire_n`]).

use std::collections::HashMap;

use super::infer::{Fact, InputFact, infer};
use crate::GraphError;
use crate::onnx::proto::{DataType, ModelProto, TensorProto};
use crate::onnx::{Attr, GraphBuilder, Tensor};

/// A value of the graph being built: a handle into the [`Emitter`]'s table of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);

/// Constants with more elements than this keep no host copy for shape inference (which
/// reads only small ones: shapes, axes, sizes, scales).
const KEEP_CONSTANT_VALUES_UP_TO: usize = 4096;

struct Slot {
    name: String,
    fact: Fact,
    /// The value of a (small) constant, for shape inference.
    constant: Option<Tensor>,
}

/// Equal constants are emitted once: the key is the element type, the dims and the
/// little-endian bytes of the data.
#[derive(PartialEq, Eq, Hash)]
struct ConstKey {
    dtype: i32,
    dims: Vec<i64>,
    raw: Vec<u8>,
}

/// Builds one graph out of typed values (see the module docs).
pub struct Emitter {
    g: GraphBuilder,
    slots: Vec<Slot>,
    consts: HashMap<ConstKey, Value>,
}

impl Emitter {
    pub fn new(name: &str) -> Self {
        Emitter { g: GraphBuilder::new(name), slots: Vec::new(), consts: HashMap::new() }
    }

    fn push(&mut self, name: String, fact: Fact, constant: Option<Tensor>) -> Value {
        self.slots.push(Slot { name, fact, constant });
        Value((self.slots.len() - 1) as u32)
    }

    fn slot(&self, v: Value) -> &Slot {
        &self.slots[v.0 as usize]
    }

    /// The value's name in the graph.
    pub fn name(&self, v: Value) -> &str {
        &self.slot(v).name
    }

    /// The value's static shape.
    pub fn shape(&self, v: Value) -> Vec<i64> {
        self.slot(v).fact.shape.clone()
    }

    /// A graph input with a static shape.
    pub fn input(&mut self, name: &str, dtype: DataType, dims: &[i64]) -> Result<Value, GraphError> {
        let name = self.g.input(name, dtype, dims)?;
        Ok(self.push(name, Fact { shape: dims.to_vec(), dtype }, None))
    }

    /// A constant, emitted once per distinct element type, dims and data.
    pub fn constant(&mut self, t: Tensor) -> Value {
        let proto = t.to_proto("");
        let key = ConstKey { dtype: proto.data_type, dims: proto.dims, raw: proto.raw_data };
        if let Some(&v) = self.consts.get(&key) {
            return v;
        }
        let name = self.g.constant(&t);
        let dtype = if matches!(t, Tensor::F32 { .. }) { DataType::Float } else { DataType::Int64 };
        let small = key.raw.len() / 4 <= KEEP_CONSTANT_VALUES_UP_TO;
        let v = self.push(name, Fact { shape: key.dims.clone(), dtype }, small.then_some(t));
        self.consts.insert(key, v);
        v
    }

    /// A scalar f32 constant.
    pub fn scalar(&mut self, v: f32) -> Value {
        self.constant(Tensor::F32 { dims: vec![], data: vec![v] })
    }

    /// A 1-D i64 constant.
    pub fn ints(&mut self, v: &[i64]) -> Value {
        self.constant(Tensor::i64(&[v.len() as i64], v.to_vec()))
    }

    /// The boolean scalar `true` (emitted once).
    pub fn bool_true(&mut self) -> Value {
        let key = ConstKey { dtype: DataType::Bool as i32, dims: vec![], raw: vec![1] };
        if let Some(&v) = self.consts.get(&key) {
            return v;
        }
        let name = self.g.fresh("const");
        let t =
            TensorProto { data_type: key.dtype, raw_data: key.raw.clone(), name: name.clone(), ..Default::default() };
        self.g.initializer_proto(t).expect("fresh names are unique");
        let v = self.push(name, Fact { shape: vec![], dtype: DataType::Bool }, None);
        self.consts.insert(key, v);
        v
    }

    /// A copy of a constant of the source model under a fresh name starting with `prefix`
    /// (not merged with equal constants).
    pub fn copied_constant(&mut self, prefix: &str, t: &Tensor) -> Result<Value, GraphError> {
        let name = self.g.fresh(prefix);
        self.g.initializer(&name, t)?;
        let (dims, dtype) = match t {
            Tensor::F32 { dims, .. } => (dims.clone(), DataType::Float),
            Tensor::I64 { dims, .. } => (dims.clone(), DataType::Int64),
        };
        let small = dims.iter().product::<i64>() as usize <= KEEP_CONSTANT_VALUES_UP_TO;
        Ok(self.push(name, Fact { shape: dims, dtype }, small.then(|| t.clone())))
    }

    fn facts(
        &self,
        op: &str,
        inputs: &[Option<Value>],
        attrs: &[(&str, Attr)],
        n: usize,
    ) -> Result<Vec<Fact>, GraphError> {
        let facts: Vec<Option<InputFact>> = inputs
            .iter()
            .map(|v| {
                v.map(|v| {
                    let s = self.slot(v);
                    InputFact { shape: &s.fact.shape, dtype: s.fact.dtype, value: s.constant.as_ref() }
                })
            })
            .collect();
        infer(op, &facts, attrs, n).map_err(|message| {
            let names: Vec<&str> = inputs.iter().map(|v| v.map_or("", |v| self.name(v))).collect();
            GraphError::Model(format!("internal: cannot wire {op} over {names:?}: {message}"))
        })
    }

    /// Wires a node with `n` outputs; `None` marks an omitted optional input.
    pub fn wire_n(
        &mut self,
        op: &str,
        inputs: &[Option<Value>],
        attrs: &[(&str, Attr)],
        n: usize,
    ) -> Result<Vec<Value>, GraphError> {
        let facts = self.facts(op, inputs, attrs, n)?;
        let slots = &self.slots;
        let names: Vec<&str> = inputs.iter().map(|v| v.map_or("", |v| slots[v.0 as usize].name.as_str())).collect();
        let outputs = self.g.node(op, &names, attrs, n)?;
        Ok(outputs.into_iter().zip(facts).map(|(name, fact)| self.push(name, fact, None)).collect())
    }

    /// Wires a single-output node and returns its output.
    pub fn wire(&mut self, op: &str, inputs: &[Value], attrs: &[(&str, Attr)]) -> Result<Value, GraphError> {
        let inputs: Vec<Option<Value>> = inputs.iter().copied().map(Some).collect();
        Ok(self.wire_n(op, &inputs, attrs, 1)?.remove(0))
    }

    /// Wires a single-output node without attributes whose output gets the name `output`.
    pub fn wire_named(&mut self, op: &str, inputs: &[Value], output: &str) -> Result<Value, GraphError> {
        let opt: Vec<Option<Value>> = inputs.iter().copied().map(Some).collect();
        let mut facts = self.facts(op, &opt, &[], 1)?;
        let slots = &self.slots;
        let names: Vec<&str> = inputs.iter().map(|&v| slots[v.0 as usize].name.as_str()).collect();
        self.g.node_named(op, &names, &[output], vec![])?;
        Ok(self.push(output.to_string(), facts.remove(0), None))
    }

    /// Exposes `v` as the graph output `name` with its shape and element type.
    pub fn output(&mut self, v: Value, name: &str) -> Result<(), GraphError> {
        let s = &self.slots[v.0 as usize];
        self.g.output(&s.name, name, s.fact.dtype, Some(&s.fact.shape))
    }

    /// Wraps the graph in a model.
    pub fn finish(self) -> ModelProto {
        self.g.finish()
    }

    // ---------------------------------------------------------------------------------
    // Shorthands for the wiring the rules repeat.

    /// `x · s` (`x` itself when `s` is 1).
    pub fn mul_s(&mut self, x: Value, s: f32) -> Result<Value, GraphError> {
        if s == 1.0 {
            return Ok(x);
        }
        let c = self.scalar(s);
        self.wire("Mul", &[x, c], &[])
    }

    /// A broadcasting binary op.
    pub fn bin(&mut self, op: &str, a: Value, b: Value) -> Result<Value, GraphError> {
        self.wire(op, &[a, b], &[])
    }

    /// `x` reshaped to `dims` (`x` itself when it has that shape already).
    pub fn reshape(&mut self, x: Value, dims: &[i64]) -> Result<Value, GraphError> {
        if self.slot(x).fact.shape == dims {
            return Ok(x);
        }
        let c = self.ints(dims);
        self.wire("Reshape", &[x, c], &[])
    }

    pub fn transpose(&mut self, x: Value, perm: &[i64]) -> Result<Value, GraphError> {
        self.wire("Transpose", &[x], &[("perm", Attr::Ints(perm.to_vec()))])
    }

    pub fn reduce_sum(&mut self, x: Value, axes: &[i64], keep: bool) -> Result<Value, GraphError> {
        let a = self.ints(axes);
        self.wire("ReduceSum", &[x, a], &[("keepdims", Attr::Int(keep as i64))])
    }

    pub fn matmul(&mut self, a: Value, b: Value) -> Result<Value, GraphError> {
        self.wire("MatMul", &[a, b], &[])
    }

    pub fn concat(&mut self, parts: &[Value], axis: i64) -> Result<Value, GraphError> {
        self.wire("Concat", parts, &[("axis", Attr::Int(axis))])
    }

    /// Sums `g` (shaped like a broadcast output) down to `shape`, the shape of an input of
    /// the broadcast.
    pub fn unbroadcast(&mut self, g: Value, shape: &[i64]) -> Result<Value, GraphError> {
        let gs = self.shape(g);
        if gs == shape {
            return Ok(g);
        }
        let off = gs.len() - shape.len();
        let axes: Vec<i64> =
            (0..gs.len()).filter(|&i| i < off || (shape[i - off] == 1 && gs[i] != 1)).map(|i| i as i64).collect();
        let r = if axes.is_empty() { g } else { self.reduce_sum(g, &axes, true)? };
        self.reshape(r, shape)
    }
}
