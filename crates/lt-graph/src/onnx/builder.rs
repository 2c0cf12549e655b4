//! A small graph builder: add inputs, initializers and nodes; every call returns the names
//! of the values it defines, so graphs are written as straight-line code. The training graph
//! is written over it by the typed emitter (`train/emit.rs`: value handles with inferred
//! shapes, in the spirit of tract's `wire_node`).

use std::collections::HashSet;

use super::proto::{
    AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto, type_proto,
};
use super::{IR_VERSION, OPSET};
use crate::GraphError;

/// A node attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    String(String),
    Tensor(Tensor),
}

/// A dense tensor constant held on the host (initializer or Constant value).
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    F32 { dims: Vec<i64>, data: Vec<f32> },
    I64 { dims: Vec<i64>, data: Vec<i64> },
}

impl Tensor {
    /// An f32 tensor; panics if `data` does not fill `dims` (a programming error).
    pub fn f32(dims: &[i64], data: Vec<f32>) -> Self {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "f32 tensor data does not match dims {dims:?}");
        Tensor::F32 { dims: dims.to_vec(), data }
    }

    /// An i64 tensor; panics if `data` does not fill `dims` (a programming error).
    pub fn i64(dims: &[i64], data: Vec<i64>) -> Self {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "i64 tensor data does not match dims {dims:?}");
        Tensor::I64 { dims: dims.to_vec(), data }
    }

    /// Converts to a `TensorProto` with little-endian `raw_data`, as exporters write it.
    pub fn to_proto(&self, name: &str) -> TensorProto {
        let (dims, data_type, raw_data) = match self {
            Tensor::F32 { dims, data } => {
                (dims.clone(), DataType::Float, data.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
            Tensor::I64 { dims, data } => {
                (dims.clone(), DataType::Int64, data.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        };
        TensorProto { dims, data_type: data_type as i32, raw_data, name: name.to_string(), ..Default::default() }
    }
}

/// Builds one ONNX graph; [`GraphBuilder::finish`] wraps it in a model.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    defined: HashSet<String>,
    counter: usize,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder { graph: GraphProto { name: name.to_string(), ..Default::default() }, ..Default::default() }
    }

    fn define(&mut self, name: &str) -> Result<(), GraphError> {
        if !self.defined.insert(name.to_string()) {
            return Err(GraphError::DuplicateValue { name: name.to_string() });
        }
        Ok(())
    }

    /// A fresh value name with the given prefix.
    pub fn fresh(&mut self, prefix: &str) -> String {
        loop {
            self.counter += 1;
            let name = format!("{prefix}_{}", self.counter);
            if !self.defined.contains(&name) {
                return name;
            }
        }
    }

    /// Declares a graph input with a static shape.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[i64]) -> Result<String, GraphError> {
        self.define(name)?;
        self.graph.input.push(value_info(name, elem, Some(dims)));
        Ok(name.to_string())
    }

    /// Declares a graph input whose dims may be symbolic (`Dim::Param`), e.g. a free batch size.
    pub fn input_dims(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> Result<String, GraphError> {
        self.define(name)?;
        self.graph.input.push(value_info_dims(name, elem, dims));
        Ok(name.to_string())
    }

    /// Adds an initializer (a constant stored in the model).
    pub fn initializer(&mut self, name: &str, value: &Tensor) -> Result<String, GraphError> {
        self.define(name)?;
        self.graph.initializer.push(value.to_proto(name));
        Ok(name.to_string())
    }

    /// Adds an initializer given as a protobuf tensor (any data type); its name is `t.name`.
    pub fn initializer_proto(&mut self, t: TensorProto) -> Result<String, GraphError> {
        self.define(&t.name)?;
        let name = t.name.clone();
        self.graph.initializer.push(t);
        Ok(name)
    }

    /// Adds a constant under a fresh name.
    pub fn constant(&mut self, value: &Tensor) -> String {
        let name = self.fresh("const");
        self.initializer(&name, value).expect("fresh names are unique");
        name
    }

    /// Adds a node of the default (`ai.onnx`) domain with `n_outputs` fresh outputs.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: &[(&str, Attr)],
        n_outputs: usize,
    ) -> Result<Vec<String>, GraphError> {
        for input in inputs {
            // The empty name marks an omitted optional input in ONNX.
            if !input.is_empty() && !self.defined.contains(*input) {
                return Err(GraphError::UnknownValue {
                    name: input.to_string(),
                    hint: format!("used by a {op_type} node before it was defined"),
                });
            }
        }
        let prefix = op_type.to_ascii_lowercase();
        let outputs: Vec<String> = (0..n_outputs).map(|_| self.fresh(&prefix)).collect();
        for o in &outputs {
            self.define(o)?;
        }
        let name = self.fresh(&format!("{prefix}_node"));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name,
            op_type: op_type.to_string(),
            attribute: attrs.iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
        Ok(outputs)
    }

    /// Adds a single-output node and returns its output name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> Result<String, GraphError> {
        Ok(self.node(op_type, inputs, attrs, 1)?.remove(0))
    }

    /// Exposes `value` as a graph output called `name` (through an Identity node when the
    /// names differ, so internal names stay free to change).
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: Option<&[i64]>) -> Result<(), GraphError> {
        if value != name {
            if !self.defined.contains(value) {
                return Err(GraphError::UnknownValue {
                    name: value.to_string(),
                    hint: "exposed as a graph output".into(),
                });
            }
            self.define(name)?;
            self.graph.node.push(NodeProto {
                input: vec![value.to_string()],
                output: vec![name.to_string()],
                name: format!("{name}_identity"),
                op_type: "Identity".into(),
                ..Default::default()
            });
        }
        self.graph.output.push(value_info(name, elem, dims));
        Ok(())
    }

    /// Like [`GraphBuilder::output`] with dims that may be symbolic.
    pub fn output_dims(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) -> Result<(), GraphError> {
        self.output(value, name, elem, None)?;
        let last = self.graph.output.len() - 1;
        self.graph.output[last] = value_info_dims(name, elem, dims);
        Ok(())
    }

    /// Adds a node with explicit output names (e.g. the training graph's `<param>.new`).
    pub fn node_named(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Result<(), GraphError> {
        for input in inputs {
            if !input.is_empty() && !self.defined.contains(*input) {
                return Err(GraphError::UnknownValue {
                    name: input.to_string(),
                    hint: format!("used by a {op_type} node before it was defined"),
                });
            }
        }
        for o in outputs {
            self.define(o)?;
        }
        let name = self.fresh(&format!("{}_node", op_type.to_ascii_lowercase()));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op_type.to_string(),
            attribute: attrs,
            ..Default::default()
        });
        Ok(())
    }

    /// Wraps the graph in a model with lt's opset and producer fields.
    pub fn finish(self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "lt".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Param(String),
}

/// A tensor value description with possibly symbolic dims.
pub fn value_info_dims(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut vi = value_info(name, elem, Some(&[]));
    if let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape = Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| tensor_shape_proto::Dimension {
                    value: Some(match d {
                        Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                        Dim::Param(p) => tensor_shape_proto::dimension::Value::DimParam(p.clone()),
                    }),
                    ..Default::default()
                })
                .collect(),
        });
    }
    vi
}

/// A tensor value description; `dims: None` leaves the shape unspecified.
pub fn value_info(name: &str, elem: DataType, dims: Option<&[i64]>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .map(|&v| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(v)),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: elem as i32, shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Converts an [`Attr`] to its protobuf form.
pub fn attribute(name: &str, value: &Attr) -> AttributeProto {
    let mut a = AttributeProto { name: name.to_string(), ..Default::default() };
    let kind = match value {
        Attr::Int(v) => {
            a.i = *v;
            AttributeType::Int
        }
        Attr::Float(v) => {
            a.f = *v;
            AttributeType::Float
        }
        Attr::Ints(v) => {
            a.ints = v.clone();
            AttributeType::Ints
        }
        Attr::Floats(v) => {
            a.floats = v.clone();
            AttributeType::Floats
        }
        Attr::String(v) => {
            a.s = v.as_bytes().to_vec();
            AttributeType::String
        }
        Attr::Tensor(t) => {
            a.t = Some(t.to_proto(""));
            AttributeType::Tensor
        }
    };
    a.r#type = kind as i32;
    a
}
