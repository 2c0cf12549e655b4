//! Reading initializer values, and writing trained values back into an inference model.

use std::collections::{HashMap, HashSet};

use crate::GraphError;
use crate::onnx::Tensor;
use crate::onnx::proto::{DataType, ModelProto, TensorProto};

/// f32 values of a tensor (raw_data or float_data).
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>, GraphError> {
    if t.data_type != DataType::Float as i32 {
        return Err(GraphError::Model(format!(
            "initializer `{}` has data type {}, expected float",
            t.name, t.data_type
        )));
    }
    let n: i64 = t.dims.iter().product();
    let v: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    } else {
        t.float_data.clone()
    };
    if v.len() as i64 != n {
        return Err(GraphError::Model(format!(
            "initializer `{}` holds {} values for dims {:?}; external data is not supported",
            t.name,
            v.len(),
            t.dims
        )));
    }
    Ok(v)
}

/// i64 values of a tensor (raw_data or int64_data).
pub fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, GraphError> {
    if t.data_type != DataType::Int64 as i32 {
        return Err(GraphError::Model(format!("tensor `{}` has data type {}, expected int64", t.name, t.data_type)));
    }
    if !t.raw_data.is_empty() {
        Ok(t.raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    } else {
        Ok(t.int64_data.clone())
    }
}

/// Returns the inference model with initializers replaced by `values` (names preserved):
/// every key must name an initializer of the same element count.
pub fn with_weights(inference: &ModelProto, values: &HashMap<String, Vec<f32>>) -> Result<ModelProto, GraphError> {
    let mut model = inference.clone();
    let graph = model.graph.as_mut().ok_or_else(|| GraphError::Model("the model has no graph".into()))?;
    let mut seen = HashSet::new();
    for t in graph.initializer.iter_mut() {
        if let Some(v) = values.get(&t.name) {
            let n: i64 = t.dims.iter().product();
            if t.data_type != DataType::Float as i32 || v.len() as i64 != n {
                return Err(GraphError::Model(format!(
                    "with_weights: `{}` has {} values but the initializer has dims {:?} (type {}); pass values of the same shape",
                    t.name,
                    v.len(),
                    t.dims,
                    t.data_type
                )));
            }
            *t = Tensor::f32(&t.dims.clone(), v.clone()).to_proto(&t.name);
            seen.insert(t.name.clone());
        }
    }
    if let Some(missing) = values.keys().find(|k| !seen.contains(*k)) {
        return Err(GraphError::UnknownValue {
            name: missing.clone(),
            hint: "with_weights got a value for a name that is no initializer of the model (pass only parameters and running statistics, not momenta)".into(),
        });
    }
    Ok(model)
}
