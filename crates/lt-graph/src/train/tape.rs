//! The two sweeps over the inference model: forward, where each node's rule emits its
//! computation and records its backward state on a tape, and backward, which replays the
//! tape in reverse, accumulating the gradient of every value that needs one.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};

use super::emit::{Emitter, Value};
use super::model::Source;
use super::ops::{self, Backward};
use super::stats::StatsCache;
use super::{Lowering, StateKind, proto_tensor};
use crate::GraphError;
use crate::onnx::proto::{NodeProto, TensorProto};

/// The emitter plus what the backward rules share: which values need a gradient, and the
/// gradients pushed so far. Dereferences to the [`Emitter`].
pub(crate) struct Ctx {
    e: Emitter,
    /// How ops are formulated for the execution provider.
    pub lowering: Lowering,
    needs_grad: HashSet<Value>,
    grads: HashMap<Value, Vec<Value>>,
}

impl Deref for Ctx {
    type Target = Emitter;
    fn deref(&self) -> &Emitter {
        &self.e
    }
}

impl DerefMut for Ctx {
    fn deref_mut(&mut self) -> &mut Emitter {
        &mut self.e
    }
}

impl Ctx {
    pub fn new(e: Emitter, lowering: Lowering) -> Self {
        Ctx { e, lowering, needs_grad: HashSet::new(), grads: HashMap::new() }
    }

    /// Whether the loss's gradient with respect to `v` is wanted (`v` depends on a
    /// parameter).
    pub fn needs_grad(&self, v: Value) -> bool {
        self.needs_grad.contains(&v)
    }

    pub fn set_needs_grad(&mut self, v: Value) {
        self.needs_grad.insert(v);
    }

    /// Adds `g` to the gradient of `x` (dropped when `x` needs none).
    pub fn push_grad(&mut self, x: Value, g: Value) {
        if self.needs_grad.contains(&x) {
            self.grads.entry(x).or_default().push(g);
        }
    }

    /// Adds `g` to the gradient of `x`, summed down to `x`'s shape first (the gradient of a
    /// broadcasting operand).
    pub fn push_grad_unbroadcast(&mut self, x: Value, g: Value) -> Result<(), GraphError> {
        if self.needs_grad(x) {
            let s = self.shape(x);
            let g = self.unbroadcast(g, &s)?;
            self.push_grad(x, g);
        }
        Ok(())
    }

    /// The gradient of `y`: the sum of everything pushed to it, or `None`.
    pub fn take_grad(&mut self, y: Value) -> Result<Option<Value>, GraphError> {
        match self.grads.remove(&y) {
            None => Ok(None),
            Some(mut v) if v.len() == 1 => Ok(v.pop()),
            Some(v) => Ok(Some(self.e.wire("Sum", &v, &[])?)),
        }
    }

    /// The gradient of `y` ([`Ctx::take_grad`]), or zeros shaped like `like` when nothing
    /// reached it (a parameter the loss does not depend on).
    pub fn take_grad_or_zeros(&mut self, y: Value, like: Value) -> Result<Value, GraphError> {
        match self.take_grad(y)? {
            Some(g) => Ok(g),
            None => self.e.mul_s(like, 0.0),
        }
    }

    /// Starts the backward sweep: `g` is the gradient of `y`.
    pub fn seed_grad(&mut self, y: Value, g: Value) {
        self.grads.insert(y, vec![g]);
    }

    pub fn finish(self) -> Emitter {
        self.e
    }
}

/// The state of the forward sweep, handed to each rule's `forward`.
pub(crate) struct Forward<'s> {
    pub cx: Ctx,
    /// BatchNorm batch statistics, shared through channel concatenations.
    pub stats: StatsCache,
    src: &'s Source<'s>,
    /// Source value names -> training-graph values.
    values: HashMap<String, Value>,
    tape: Vec<(Value, Box<dyn Backward>)>,
    running_updates: Vec<(String, Value)>,
    /// Eval mode (a frozen backbone): BatchNorm normalises by its running statistics and
    /// Dropout is the identity.
    pub eval_mode: bool,
}

/// What the forward sweep leaves for the loss, the backward sweep and the outputs.
pub(crate) struct Swept {
    pub cx: Ctx,
    pub values: HashMap<String, Value>,
    /// Each recorded op's output and its backward rule, in forward order.
    pub tape: Vec<(Value, Box<dyn Backward>)>,
    /// New running statistics: (state input name, value).
    pub running_updates: Vec<(String, Value)>,
}

impl<'s> Forward<'s> {
    /// `values` maps the source's image input and state initializers to their inputs.
    pub fn new(cx: Ctx, src: &'s Source<'s>, values: HashMap<String, Value>) -> Self {
        Forward {
            cx,
            stats: StatsCache::default(),
            src,
            values,
            tape: Vec::new(),
            running_updates: Vec::new(),
            eval_mode: false,
        }
    }

    /// Input `i` of `node`: a value computed so far, a state input, or a constant of the
    /// source model (copied into the training graph on first use).
    pub fn input(&mut self, node: &NodeProto, i: usize) -> Result<Value, GraphError> {
        let name = node.input.get(i).ok_or_else(|| ops::unsupported(node, format!("missing input {i}")))?;
        if let Some(&v) = self.values.get(name) {
            return Ok(v);
        }
        if let Some(t) = self.src.initializer(name) {
            let v = self.cx.copied_constant("init", &proto_tensor(t)?)?;
            self.values.insert(name.clone(), v);
            return Ok(v);
        }
        Err(GraphError::UnknownValue {
            name: name.clone(),
            hint: format!("input of node `{}` ({})", node.name, node.op_type),
        })
    }

    /// The first `N` inputs of `node` ([`Forward::input`]).
    pub fn inputs<const N: usize>(&mut self, node: &NodeProto) -> Result<[Value; N], GraphError> {
        let vs = (0..N).map(|i| self.input(node, i)).collect::<Result<Vec<_>, _>>()?;
        Ok(vs.try_into().expect("N inputs were read"))
    }

    /// Optional input `i` of `node`: `None` when absent or empty.
    pub fn optional_input(&mut self, node: &NodeProto, i: usize) -> Result<Option<Value>, GraphError> {
        if ops::has_input(node, i) { self.input(node, i).map(Some) } else { Ok(None) }
    }

    /// The source initializer (or Constant node value) feeding input `i` of `node`.
    pub fn initializer(&self, node: &NodeProto, i: usize) -> Option<&'s TensorProto> {
        node.input.get(i).and_then(|n| self.src.initializer(n))
    }

    /// The role of a source initializer.
    pub fn role(&self, name: &str) -> Option<StateKind> {
        self.src.roles.get(name).copied()
    }

    /// Records the backward state of an op whose output is `y`; the backward sweep runs it,
    /// in reverse order, with the gradient of `y`.
    pub fn record(&mut self, y: Value, rec: impl Backward + 'static) {
        self.tape.push((y, Box::new(rec)));
    }

    /// Records the new value of the running statistic `name`.
    pub fn update_running(&mut self, name: &str, v: Value) {
        self.running_updates.push((name.to_string(), v));
    }

    /// Runs every node's rule in order.
    pub fn sweep(mut self, nodes: &[NodeProto]) -> Result<Swept, GraphError> {
        for node in nodes {
            let rule = ops::rule(&node.op_type).ok_or_else(|| {
                ops::unsupported(
                    node,
                    format!(
                        "op {} cannot be trained by lt; supported ops: {}",
                        node.op_type,
                        super::supported_ops().join(", ")
                    ),
                )
            })?;
            let tape_len = self.tape.len();
            let Some(y) = rule.forward(&mut self, node)? else { continue };
            // Gradient flows to y (and the node's intermediate values) when any input
            // needs it.
            let any = node.input.iter().filter_map(|i| self.values.get(i)).any(|&v| self.cx.needs_grad(v));
            if any {
                self.cx.set_needs_grad(y);
                for &(out, _) in &self.tape[tape_len..] {
                    self.cx.set_needs_grad(out);
                }
            }
            let out_name = node.output.first().ok_or_else(|| ops::unsupported(node, "node has no output"))?;
            self.values.insert(out_name.clone(), y);
        }
        Ok(Swept { cx: self.cx, values: self.values, tape: self.tape, running_updates: self.running_updates })
    }
}

/// The backward sweep: each recorded rule, last first, given its output's gradient.
pub(crate) fn backward(cx: &mut Ctx, tape: &[(Value, Box<dyn Backward>)]) -> Result<(), GraphError> {
    for (y, rec) in tape.iter().rev() {
        let Some(dy) = cx.take_grad(*y)? else { continue };
        rec.backward(cx, dy)?;
    }
    Ok(())
}
