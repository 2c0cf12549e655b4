//! The training engine: one training-step session and one evaluation session over the same
//! device-resident state.
//!
//! Parameters, momenta and running statistics live in two sets of tensors allocated once on
//! the execution provider's device (A and B). Two IoBindings are made up front: the first
//! reads A and writes the updated state into B, the second reads B and writes A. Steps
//! alternate between them (ping-pong), so state never crosses to the host and no tensor is
//! allocated per step; only the batch goes in and the loss and logits come out.
//!
//! The per-step inputs (images, labels, class weights, learning rate) and outputs (loss,
//! logits) are device tensors too, allocated and bound once: on CUDA the batch is written
//! into pinned host tensors and copied into them, and every address stays fixed, which is
//! what a CUDA graph needs. With `Device::Cuda { cuda_graph: true }` each binding's step is
//! captured once (graph ids 0 and 1, one per ping-pong direction) and replayed; when capture
//! fails, the engine falls back to plain runs and says why in [`Engine::cuda_graph`].

use std::collections::HashMap;

use lt_graph::onnx::proto::{ModelProto, ValueInfoProto};
use lt_graph::train::{StateKind, TrainingGraph, step_io};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions, Session};
use ort::value::{DynTensor, Tensor};

use crate::device::Device;
use crate::runtime::RuntimeError;

/// What one training step returns to the host.
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub loss: f32,
    /// `[B, C]` logits of the batch, before the update.
    pub logits: Vec<f32>,
}

#[derive(Debug)]
struct StateSlot {
    name: String,
    output: String,
    kind: StateKind,
    dims: Vec<i64>,
}

/// Whether training steps replay captured CUDA graphs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CudaGraph {
    /// Not asked for (CPU, or `--no-cuda-graph`).
    Off,
    /// Both ping-pong steps were captured and are replayed.
    Captured,
    /// Asked for, but capture failed: plain runs, and why.
    Fallback(String),
}

/// The RunOptions selecting CUDA graph 0 or 1 (one per ping-pong binding).
struct GraphRunOptions([RunOptions; 2]);

impl std::fmt::Debug for GraphRunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphRunOptions(gpu_graph_id 0, 1)")
    }
}

/// Step inputs and outputs at fixed addresses on the device.
#[derive(Debug)]
struct StepIo {
    images: DynTensor,
    labels: DynTensor,
    class_weights: DynTensor,
    lr: DynTensor,
    /// `labels_mix` [B] and `mix_lambda` [] of a graph built with `mixed_labels`.
    mix: Option<(DynTensor, DynTensor)>,
    loss: DynTensor,
    logits: DynTensor,
    /// On CUDA: pinned host twins of the six tensors above, the batch is written into and the
    /// results read from. None on the CPU, where the bound tensors are host memory.
    staging: Option<Box<StepIo>>,
}

impl StepIo {
    fn new(
        alloc: &Allocator,
        batch: usize,
        [c, h, w]: [usize; 3],
        classes: usize,
        mixed: bool,
    ) -> Result<Self, RuntimeError> {
        let mix = match mixed {
            true => Some((
                Tensor::<i64>::new(alloc, [batch])?.upcast(),
                Tensor::<f32>::new(alloc, Vec::<usize>::new())?.upcast(),
            )),
            false => None,
        };
        Ok(StepIo {
            mix,
            images: Tensor::<f32>::new(alloc, [batch, c, h, w])?.upcast(),
            labels: Tensor::<i64>::new(alloc, [batch])?.upcast(),
            class_weights: Tensor::<f32>::new(alloc, [classes])?.upcast(),
            lr: Tensor::<f32>::new(alloc, Vec::<usize>::new())?.upcast(),
            loss: Tensor::<f32>::new(alloc, Vec::<usize>::new())?.upcast(),
            logits: Tensor::<f32>::new(alloc, [batch, classes])?.upcast(),
            staging: None,
        })
    }

    /// The tensors the host writes inputs into and reads outputs from (the pinned twins on
    /// CUDA, the bound tensors themselves on the CPU).
    fn host_side(&mut self) -> &mut StepIo {
        match self.staging {
            Some(ref mut s) => s,
            None => self,
        }
    }

    fn write_inputs(&mut self, batch: StepBatch, class_weights: &[f32], lr: f32) -> Result<(), RuntimeError> {
        let StepBatch { images, labels, mix } = batch;
        let host = self.host_side();
        if let Some((labels_mix, lambda)) = &mut host.mix {
            // A plain batch in a mixing run: its own labels with λ = 1, exactly the plain loss.
            let (other, l) = mix.unwrap_or((labels, 1.0));
            labels_mix.try_extract_tensor_mut::<i64>()?.1.copy_from_slice(other);
            lambda.try_extract_tensor_mut::<f32>()?.1[0] = l;
        }
        host.images.try_extract_tensor_mut::<f32>()?.1.copy_from_slice(images);
        host.labels.try_extract_tensor_mut::<i64>()?.1.copy_from_slice(labels);
        host.class_weights.try_extract_tensor_mut::<f32>()?.1.copy_from_slice(class_weights);
        host.lr.try_extract_tensor_mut::<f32>()?.1[0] = lr;
        if let Some(s) = &self.staging {
            s.images.copy_into(&mut self.images)?;
            s.labels.copy_into(&mut self.labels)?;
            s.class_weights.copy_into(&mut self.class_weights)?;
            s.lr.copy_into(&mut self.lr)?;
            if let (Some((sl, sm)), Some((dl, dm))) = (&s.mix, &mut self.mix) {
                sl.copy_into(dl)?;
                sm.copy_into(dm)?;
            }
        }
        Ok(())
    }

    fn read_outputs(&mut self) -> Result<StepOutput, RuntimeError> {
        if let Some(s) = self.staging.as_mut() {
            self.loss.copy_into(&mut s.loss)?;
            self.logits.copy_into(&mut s.logits)?;
        }
        let host = self.host_side();
        let loss = host.loss.try_extract_tensor::<f32>()?.1[0];
        let logits = host.logits.try_extract_tensor::<f32>()?.1.to_vec();
        Ok(StepOutput { loss, logits })
    }
}

/// One training batch as the step graph takes it.
#[derive(Clone, Copy, Debug)]
pub struct StepBatch<'a> {
    /// NCHW images, normalised.
    pub images: &'a [f32],
    pub labels: &'a [i64],
    /// A mixed batch's partner labels and λ (for a graph built with `mixed_labels`); `None`
    /// for a plain batch.
    pub mix: Option<(&'a [i64], f32)>,
}

impl<'a> StepBatch<'a> {
    pub fn plain(images: &'a [f32], labels: &'a [i64]) -> Self {
        StepBatch { images, labels, mix: None }
    }
}

/// Sessions plus device-resident state.
#[derive(Debug)]
pub struct Engine {
    train: Session,
    eval: Session,
    slots: Vec<StateSlot>,
    /// `buffers[k][i]`: state tensor `i` of set `k`.
    buffers: [Vec<DynTensor>; 2],
    bindings: [IoBinding; 2],
    current: usize,
    device: Device,
    batch_size: usize,
    num_classes: usize,
    image_shape: [usize; 3],
    io: StepIo,
    /// One RunOptions per binding, carrying its CUDA graph id when graphs are captured.
    run_options: Option<GraphRunOptions>,
    pub cuda_graph: CudaGraph,
    /// Graph inputs of the evaluation session that come from the state (parameters, running stats).
    eval_state: Vec<usize>,
    /// The evaluation graph's image input and logits output (an imported model keeps its own names).
    eval_io: (String, String),
    pub node_count: usize,
    pub session_seconds: f64,
}

impl Engine {
    /// Creates both sessions on `device` and uploads the initial state of `graph`.
    pub fn new(
        graph: &TrainingGraph,
        inference: &ModelProto,
        device: &Device,
        threads: usize,
    ) -> Result<Self, RuntimeError> {
        Self::with_profile(graph, inference, device, threads, None)
    }

    /// As [`Engine::new`], profiling the training session into `profile` (see
    /// [`Engine::end_profiling`]).
    pub fn with_profile(
        graph: &TrainingGraph,
        inference: &ModelProto,
        device: &Device,
        threads: usize,
        profile: Option<&std::path::Path>,
    ) -> Result<Self, RuntimeError> {
        let t0 = std::time::Instant::now();
        let train_bytes = lt_graph::onnx::encode(&graph.model);
        let node_count = graph.model.graph.as_ref().map_or(0, |g| g.node.len());
        let wants_graph = device.cuda_graph();
        let train = device.session_with(&train_bytes, threads, profile, wants_graph)?;
        let eval_model = state_as_inputs(inference, graph);
        let eval = device.session(&lt_graph::onnx::encode(&eval_model), threads)?;
        let mut engine = Self::assemble(graph, &eval_model, train, eval, device)?;
        engine.node_count = node_count;
        let initial: HashMap<String, Vec<f32>> = graph.state.iter().map(|s| (s.name.clone(), s.init.clone())).collect();
        engine.load_state(&initial)?;
        if wants_graph && let Err(e) = engine.capture_then_restore(&initial) {
            // A graph that cannot be captured (a node left on the CPU, a Memcpy) still
            // trains: plain runs on a session without graph capture.
            let train = device.session_with(&train_bytes, threads, profile, false)?;
            let eval = device.session(&lt_graph::onnx::encode(&eval_model), threads)?;
            engine = Self::assemble(graph, &eval_model, train, eval, device)?;
            engine.node_count = node_count;
            engine.cuda_graph = CudaGraph::Fallback(e.to_string());
            engine.load_state(&initial)?;
        }
        engine.session_seconds = t0.elapsed().as_secs_f64();
        Ok(engine)
    }

    /// Allocates state and step I/O where `train` runs and binds both ping-pong directions.
    fn assemble(
        graph: &TrainingGraph,
        eval_model: &ModelProto,
        train: Session,
        eval: Session,
        device: &Device,
    ) -> Result<Self, RuntimeError> {
        let slots: Vec<StateSlot> = graph
            .state
            .iter()
            .map(|s| StateSlot { name: s.name.clone(), output: s.output.clone(), kind: s.kind, dims: s.dims.clone() })
            .collect();
        let state_alloc = device.state_allocator(&train)?;
        let mut buffers: [Vec<DynTensor>; 2] = [Vec::new(), Vec::new()];
        for set in &mut buffers {
            for s in &graph.state {
                let shape: Vec<usize> = s.dims.iter().map(|&d| d as usize).collect();
                set.push(Tensor::<f32>::new(&state_alloc, shape)?.upcast());
            }
        }
        let batch_size = images_batch_size(&graph.model)?;
        let mixed = graph.model.graph.as_ref().is_some_and(|g| g.input.iter().any(|i| i.name == step_io::LABELS_MIX));
        let mut io = StepIo::new(&state_alloc, batch_size, graph.image_shape, graph.num_classes, mixed)?;
        if !device.is_cpu() {
            // Page-locked staging makes the copies DMA transfers; where the provider offers no
            // pinned allocator, pageable host memory still works (slower copies).
            let staging = match Allocator::new(&train, pinned_memory(device)?) {
                Ok(pinned) => StepIo::new(&pinned, batch_size, graph.image_shape, graph.num_classes, mixed)?,
                Err(_) => StepIo::new(&Allocator::default(), batch_size, graph.image_shape, graph.num_classes, mixed)?,
            };
            io.staging = Some(Box::new(staging));
        }
        let bindings = [train.create_binding()?, train.create_binding()?];
        let eval_inputs: Vec<String> =
            eval_model.graph.as_ref().map_or(vec![], |g| g.input.iter().map(|i| i.name.clone()).collect());
        let eval_state =
            slots.iter().enumerate().filter(|(_, s)| eval_inputs.contains(&s.name)).map(|(i, _)| i).collect();
        let eval_io = eval_model
            .graph
            .as_ref()
            .and_then(|g| {
                let image = g.input.iter().find(|i| !slots.iter().any(|s| s.name == i.name))?;
                Some((image.name.clone(), g.output.first()?.name.clone()))
            })
            .ok_or_else(|| RuntimeError::State {
                message: "the inference model has no image input or no output".into(),
            })?;
        let mut engine = Engine {
            train,
            eval,
            slots,
            buffers,
            bindings,
            current: 0,
            device: device.clone(),
            batch_size,
            num_classes: graph.num_classes,
            image_shape: graph.image_shape,
            io,
            run_options: None,
            cuda_graph: CudaGraph::Off,
            eval_state,
            eval_io,
            node_count: 0,
            session_seconds: 0.0,
        };
        engine.bind()?;
        Ok(engine)
    }

    /// [`Engine::capture`], then `initial` loaded again over what the capturing runs wrote.
    fn capture_then_restore(&mut self, initial: &HashMap<String, Vec<f32>>) -> Result<(), RuntimeError> {
        self.capture()?;
        self.load_state(initial)
    }

    /// Captures the step of both bindings as CUDA graphs (ids 0 and 1): a warm-up run and the
    /// capturing run each, on zero inputs with lr 0. These runs overwrite both state sets, so
    /// the caller loads the real state afterwards.
    fn capture(&mut self) -> Result<(), RuntimeError> {
        let mut options = Vec::with_capacity(2);
        for k in 0..2 {
            let mut o = RunOptions::new()?;
            o.set("gpu_graph_id", k.to_string())?;
            options.push(o);
        }
        let options: [RunOptions; 2] =
            options.try_into().map_err(|_| RuntimeError::State { message: "internal: two run options".into() })?;
        let [c, h, w] = self.image_shape;
        let images = vec![0f32; self.batch_size * c * h * w];
        let labels = vec![0i64; self.batch_size];
        let weights = vec![1f32; self.num_classes];
        self.io.write_inputs(StepBatch::plain(&images, &labels), &weights, 0.0)?;
        for (k, o) in options.iter().enumerate() {
            for _ in 0..2 {
                let _ = self.train.run_binding_with_options(&self.bindings[k], o)?;
            }
        }
        self.run_options = Some(GraphRunOptions(options));
        self.cuda_graph = CudaGraph::Captured;
        self.current = 0;
        Ok(())
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Binds state set k as inputs and set 1-k as outputs of binding k, and the step I/O to
    /// both, once: the tensors never move, so the bindings stay valid for the whole run.
    fn bind(&mut self) -> Result<(), RuntimeError> {
        let [a, b] = &mut self.buffers;
        for (k, binding) in self.bindings.iter_mut().enumerate() {
            let (src, dst) = if k == 0 { (&*a, &mut *b) } else { (&*b, &mut *a) };
            for (i, slot) in self.slots.iter().enumerate() {
                binding.bind_input(slot.name.as_str(), &src[i])?;
                binding.bind_output(slot.output.as_str(), &mut dst[i])?;
            }
            binding.bind_input(step_io::IMAGES, &self.io.images)?;
            binding.bind_input(step_io::LABELS, &self.io.labels)?;
            binding.bind_input(step_io::CLASS_WEIGHTS, &self.io.class_weights)?;
            binding.bind_input(step_io::LR, &self.io.lr)?;
            if let Some((labels_mix, lambda)) = &self.io.mix {
                binding.bind_input(step_io::LABELS_MIX, labels_mix)?;
                binding.bind_input(step_io::MIX_LAMBDA, lambda)?;
            }
            binding.bind_output(step_io::LOSS, &mut self.io.loss)?;
            binding.bind_output(step_io::LOGITS, &mut self.io.logits)?;
        }
        Ok(())
    }

    /// One SGD step on a full batch.
    pub fn step(
        &mut self,
        images: &[f32],
        labels: &[i64],
        class_weights: &[f32],
        lr: f32,
    ) -> Result<StepOutput, RuntimeError> {
        self.step_mixed(StepBatch::plain(images, labels), class_weights, lr)
    }

    /// One SGD step on a full batch, mixed (`Some((partner labels, λ))`, for a graph built
    /// with `mixed_labels`) or plain.
    pub fn step_mixed(&mut self, batch: StepBatch, class_weights: &[f32], lr: f32) -> Result<StepOutput, RuntimeError> {
        let StepBatch { images, labels, mix } = batch;
        if let Some((other, _)) = mix {
            if self.io.mix.is_none() {
                return Err(RuntimeError::State {
                    message: "a mixed batch needs a training graph built with mixed_labels".into(),
                });
            }
            if other.len() != labels.len() {
                return Err(RuntimeError::State {
                    message: format!("{} partner labels for {} labels", other.len(), labels.len()),
                });
            }
        }
        let [c, h, w] = self.image_shape;
        if images.len() != self.batch_size * c * h * w || labels.len() != self.batch_size {
            return Err(RuntimeError::State {
                message: format!(
                    "a step takes exactly {} images ({} values) and labels, got {} values and {} labels",
                    self.batch_size,
                    self.batch_size * c * h * w,
                    images.len(),
                    labels.len()
                ),
            });
        }
        if class_weights.len() != self.num_classes {
            return Err(RuntimeError::State {
                message: format!(
                    "a step takes one class weight per class ({}), got {}",
                    self.num_classes,
                    class_weights.len()
                ),
            });
        }
        self.io.write_inputs(batch, class_weights, lr)?;
        {
            let binding = &self.bindings[self.current];
            let _outputs = match &self.run_options {
                Some(options) => self.train.run_binding_with_options(binding, &options.0[self.current])?,
                None => self.train.run_binding(binding)?,
            };
        }
        self.current = 1 - self.current;
        self.io.read_outputs()
    }

    /// Logits `[n, C]` of `n` normalised images with the current weights (BN in inference form).
    pub fn evaluate(&mut self, images: &[f32], n: usize) -> Result<Vec<f32>, RuntimeError> {
        let [c, h, w] = self.image_shape;
        let input = Tensor::from_array(([n, c, h, w], images.to_vec()))?;
        let state = &self.buffers[self.current];
        let mut inputs: Vec<(String, ort::session::SessionInputValue<'_>)> =
            vec![(self.eval_io.0.clone(), input.into())];
        for &i in &self.eval_state {
            inputs.push((self.slots[i].name.clone(), (&state[i]).into()));
        }
        let outputs = self.eval.run(inputs)?;
        let (_, logits) = outputs[self.eval_io.1.as_str()].try_extract_tensor::<f32>()?;
        Ok(logits.to_vec())
    }

    /// Stops profiling the training session; returns the profile file's path.
    pub fn end_profiling(&mut self) -> Result<String, RuntimeError> {
        Ok(self.train.end_profiling()?)
    }

    /// A host copy of the current state, by name.
    pub fn state(&self) -> Result<Vec<(String, Vec<f32>)>, RuntimeError> {
        let set = &self.buffers[self.current];
        let mut out = Vec::with_capacity(self.slots.len());
        for (slot, tensor) in self.slots.iter().zip(set) {
            let host = if self.device.is_cpu() { None } else { Some(tensor.to(AllocationDevice::CPU, 0)?) };
            let (_, data) = host.as_ref().unwrap_or(tensor).try_extract_tensor::<f32>()?;
            out.push((slot.name.clone(), data.to_vec()));
        }
        Ok(out)
    }

    /// The trainable parameters and running statistics (what the inference model needs).
    pub fn weights(&self) -> Result<HashMap<String, Vec<f32>>, RuntimeError> {
        let kinds: HashMap<&str, StateKind> = self.slots.iter().map(|s| (s.name.as_str(), s.kind)).collect();
        Ok(self.state()?.into_iter().filter(|(n, _)| kinds[n.as_str()] != StateKind::Momentum).collect())
    }

    /// Overwrites the current state set with host values (every slot must be present).
    pub fn load_state(&mut self, values: &HashMap<String, Vec<f32>>) -> Result<(), RuntimeError> {
        let cpu = self.device.is_cpu();
        for (i, slot) in self.slots.iter().enumerate() {
            let data = values
                .get(&slot.name)
                .ok_or_else(|| RuntimeError::State { message: format!("no value for state tensor `{}`", slot.name) })?;
            let expect: i64 = slot.dims.iter().product();
            if data.len() as i64 != expect {
                return Err(RuntimeError::State {
                    message: format!(
                        "state tensor `{}` has {} values, the graph expects {expect}",
                        slot.name,
                        data.len()
                    ),
                });
            }
            let shape: Vec<usize> = slot.dims.iter().map(|&d| d as usize).collect();
            let target = &mut self.buffers[self.current][i];
            if cpu {
                let (_, dst) = target.try_extract_tensor_mut::<f32>()?;
                dst.copy_from_slice(data);
            } else {
                let host = Tensor::from_array((shape, data.clone()))?;
                host.upcast().copy_into(&mut *target)?;
            }
        }
        Ok(())
    }
}

/// The inference model with every state initializer (parameters, running stats) turned into
/// a graph input, so evaluation reads the live state instead of a copy baked into the model.
fn state_as_inputs(inference: &ModelProto, graph: &TrainingGraph) -> ModelProto {
    let state: HashMap<&str, &[i64]> = graph.state.iter().map(|s| (s.name.as_str(), s.dims.as_slice())).collect();
    let mut model = inference.clone();
    if let Some(g) = model.graph.as_mut() {
        let (moved, kept): (Vec<_>, Vec<_>) =
            g.initializer.drain(..).partition(|t| state.contains_key(t.name.as_str()));
        g.initializer = kept;
        for t in moved {
            g.input.push(tensor_input(&t.name, &t.dims));
        }
    }
    model
}

fn tensor_input(name: &str, dims: &[i64]) -> ValueInfoProto {
    use lt_graph::onnx::proto::{TensorShapeProto, TypeProto, tensor_shape_proto as tsp, type_proto};
    let dim =
        dims.iter().map(|&d| tsp::Dimension { value: Some(tsp::dimension::Value::DimValue(d)), ..Default::default() });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: lt_graph::onnx::proto::DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dim.collect() }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The static batch size of the training graph's `images` input.
fn images_batch_size(model: &ModelProto) -> Result<usize, RuntimeError> {
    use lt_graph::onnx::proto::{tensor_shape_proto::dimension::Value, type_proto};
    let input = model.graph.as_ref().and_then(|g| g.input.iter().find(|i| i.name == step_io::IMAGES));
    let dim0 = input.and_then(|i| match i.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.shape.as_ref()?.dim.first()?.value.clone(),
    });
    match dim0 {
        Some(Value::DimValue(n)) if n > 0 => Ok(n as usize),
        _ => {
            Err(RuntimeError::State { message: "the training graph's `images` input has no static batch size".into() })
        }
    }
}

/// Page-locked host memory of the CUDA provider, for fast, DMA-able batch copies.
fn pinned_memory(device: &Device) -> Result<MemoryInfo<'static>, RuntimeError> {
    let id = match device {
        Device::Cuda { device_id, .. } => *device_id,
        Device::Cpu => 0,
    };
    Ok(MemoryInfo::new(AllocationDevice::CUDA_PINNED, id, AllocatorType::Device, MemoryType::CPUInput)?)
}

#[cfg(test)]
mod tests {
    use lt_graph::train::{Loss, Lowering, Sgd, TrainingGraphSpec};

    use super::*;

    /// The capture sequence (warm-up and capturing runs of both bindings with graph ids, then
    /// the real state reloaded) must leave training exactly where an engine without it
    /// starts. On the CPU the graph ids are inert, so this checks the bookkeeping the CUDA
    /// path relies on: which state set is current, and that the reload undoes the runs.
    #[test]
    fn the_capture_sequence_leaves_training_unchanged() {
        let inference = lt_graph::models::densenet(&lt_graph::models::preset("densenet-tiny", 3).unwrap(), 2).unwrap();
        let spec = TrainingGraphSpec {
            batch_size: 4,
            loss: Loss::CrossEntropy { label_smoothing: 0.0 },
            sgd: Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4, decay_bn_and_bias: true },
            class_counts: vec![5, 3, 1],
            lowering: Lowering::Cpu,
            mixed_labels: false,
        };
        let graph = lt_graph::train::training_graph(&inference, &spec).unwrap();
        let initial: HashMap<String, Vec<f32>> = graph.state.iter().map(|s| (s.name.clone(), s.init.clone())).collect();
        let mut plain = Engine::new(&graph, &inference, &Device::Cpu, 1).unwrap();
        let mut captured = Engine::new(&graph, &inference, &Device::Cpu, 1).unwrap();
        captured.capture_then_restore(&initial).unwrap();
        assert_eq!(captured.cuda_graph, CudaGraph::Captured);
        let images: Vec<f32> = (0..4 * 3 * 32 * 32).map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0).collect();
        for step in 0..3 {
            let labels = [step % 3, 1, 2, 0].map(|l| l as i64);
            let a = plain.step(&images, &labels, &[1.0, 2.0, 3.0], 0.05).unwrap();
            let b = captured.step(&images, &labels, &[1.0, 2.0, 3.0], 0.05).unwrap();
            assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {step}");
        }
        assert_eq!(plain.state().unwrap(), captured.state().unwrap());
    }
}
