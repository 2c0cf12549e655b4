//! Reading the inference model: its constants, image input, logits and the role of each
//! initializer (parameter, running statistic or constant), asked of the op rules.

use std::collections::{HashMap, HashSet};

use super::StateKind;
use super::ops::{self, constant_value};
use crate::GraphError;
use crate::onnx::proto::{DataType, GraphProto, ModelProto, TensorProto, type_proto};

/// The inference model as the training graph reads it.
pub(crate) struct Source<'m> {
    pub graph: &'m GraphProto,
    initializers: HashMap<&'m str, &'m TensorProto>,
    /// Values of Constant nodes, keyed by their output (they shadow initializers).
    constants: HashMap<String, TensorProto>,
    /// Name of the image input.
    pub image_input: String,
    /// `[channels, height, width]` of the image input.
    pub image_shape: [usize; 3],
    /// Name of the first graph output (the logits).
    pub logits: String,
    /// Roles of the initializers that are state (absent: a constant).
    pub roles: HashMap<String, StateKind>,
    /// State exempt from weight decay unless `Sgd::decay_bn_and_bias`.
    pub no_decay: HashSet<String>,
}

impl<'m> Source<'m> {
    pub fn read(model: &'m ModelProto) -> Result<Self, GraphError> {
        let graph = graph_of(model)?;
        let initializers = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let constants = graph
            .node
            .iter()
            .filter(|n| n.op_type == "Constant")
            .filter_map(|n| constant_value(n).map(|t| (t.name.clone(), t)))
            .collect();
        let mut src = Source {
            graph,
            initializers,
            constants,
            image_input: String::new(),
            image_shape: [0; 3],
            logits: String::new(),
            roles: HashMap::new(),
            no_decay: HashSet::new(),
        };
        let image_input =
            graph.input.iter().find(|i| src.initializer(&i.name).is_none()).ok_or_else(|| {
                GraphError::Model("the model has no image input (every input is an initializer)".into())
            })?;
        let idims = static_dims(image_input);
        if idims.len() != 4 || idims[1..].iter().any(Option::is_none) {
            return Err(GraphError::Model(format!(
                "image input `{}` must be [N, C, H, W] with static C, H, W (got {idims:?})",
                image_input.name
            )));
        }
        src.image_input = image_input.name.clone();
        src.image_shape =
            [idims[1].unwrap_or(0) as usize, idims[2].unwrap_or(0) as usize, idims[3].unwrap_or(0) as usize];
        src.logits = graph
            .output
            .first()
            .map(|o| o.name.clone())
            .ok_or_else(|| GraphError::Model("the model has no output".into()))?;
        (src.roles, src.no_decay) = src.roles();
        Ok(src)
    }

    /// The initializer or Constant-node value called `name`.
    pub fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.constants.get(name).or_else(|| self.initializers.get(name).copied())
    }

    /// Asks each node's rule which of its inputs are state; a float initializer there gets
    /// the role (a later node's claim wins).
    fn roles(&self) -> (HashMap<String, StateKind>, HashSet<String>) {
        let (mut roles, mut no_decay) = (HashMap::new(), HashSet::new());
        for n in &self.graph.node {
            let Some(rule) = ops::rule(&n.op_type) else { continue };
            let init = |i: usize| n.input.get(i).and_then(|x| self.initializer(x));
            for role in rule.roles(n, &init) {
                if init(role.input).is_some_and(|t| t.data_type == DataType::Float as i32) {
                    let name = n.input[role.input].clone();
                    roles.insert(name.clone(), role.kind);
                    if !role.decay {
                        no_decay.insert(name);
                    }
                }
            }
        }
        (roles, no_decay)
    }
}

pub(crate) fn graph_of(model: &ModelProto) -> Result<&GraphProto, GraphError> {
    model.graph.as_ref().ok_or_else(|| GraphError::Model("the model has no graph".into()))
}

fn static_dims(vi: &crate::onnx::proto::ValueInfoProto) -> Vec<Option<i64>> {
    use crate::onnx::proto::tensor_shape_proto::dimension::Value;
    match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().map_or(vec![], |s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) if v > 0 => Some(v),
                    _ => None,
                })
                .collect()
        }),
        None => vec![],
    }
}
