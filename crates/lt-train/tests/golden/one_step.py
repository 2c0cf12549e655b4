"""One SGD step in PyTorch on lt's own inference models: the golden values that
`crates/lt-train/tests/it/golden_step.rs` compares lt's training-step graph against.

A case's optional `step` names a variant: `mixed` (the mixup criterion λ·L(a) + (1−λ)·L(b),
as facebookresearch/mixup-cifar10 computes it), `head-only` (classifier re-training: only the
listed parameters train, BatchNorm in eval mode) or `sam` (davda54/sam's first_step /
second_step, with the running statistics frozen in the second pass as its
`disable_running_stats` does).

For each case of CASES.json (written by that test) it loads the inference ONNX model lt
built, runs it as PyTorch ops (torch.nn.functional, autograd; BatchNorm in training mode,
which updates the running statistics as nn.BatchNorm2d does), computes the case's loss as the
losses' reference code does (F.cross_entropy with `weight=` class weights, i.e. the weighted
mean), takes one torch.optim.SGD step (momentum, weight decay) and writes small fingerprints
of the result to GOLDEN.json: the loss, and the dot products of the logits, of each
parameter's momentum buffer (its gradient plus weight decay), of the updated parameters and of
the updated running statistics with a probe vector that both sides compute by formula
(`probe`), so no tensor is committed.

Regenerate (needs .venv-torch: benches/train/install-torch.sh, then `.venv-torch/bin/pip
install onnx`):

    LT_GOLDEN_REGENERATE=1 LT_TEST_PYTHON=$PWD/.venv-test/bin/python \
        cargo test --locked -p lt-train --test it golden_step

The test writes the models and CASES.json into a temporary directory, runs this script with
.venv-torch/bin/python, and then compares as it always does.

usage: one_step.py CASES.json GOLDEN.json
"""
import json
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

# The probe and the batch: u(k) = ((k + salt) * MULT mod 2^32) / 2^32 * 2 - 1, exact in f64.
MULT = 2654435761
IMAGES_SALT = 1
PROBE_SALT = 2


def probe(n, salt=PROBE_SALT):
    k = np.arange(n, dtype=np.uint64) + np.uint64(salt)
    v = (k * np.uint64(MULT)) % np.uint64(1 << 32)
    return torch.from_numpy((v.astype(np.float64) / float(1 << 32) * 2.0 - 1.0).astype(np.float32))


def dot(t):
    flat = t.detach().reshape(-1).to(torch.float64)
    return float(flat @ probe(flat.numel()).to(torch.float64))


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Net:
    """The inference graph as PyTorch ops. Trainable: every float initializer with at least one
    dimension that is not a BatchNorm running statistic (lt's parameter roles)."""

    def __init__(self, model):
        self.graph = model.graph
        init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        running = set()
        for n in self.graph.node:
            if n.op_type == "BatchNormalization":
                running.update(n.input[3:5])
        self.params, self.running, self.consts = {}, {}, {}
        for name, a in init.items():
            if a.dtype == np.float32 and name in running:
                self.running[name] = torch.tensor(a.copy())
            elif a.dtype == np.float32 and a.ndim >= 1:
                self.params[name] = torch.tensor(a.copy(), requires_grad=True)
            else:
                self.consts[name] = torch.tensor(a.copy())

    # BatchNorm: batch statistics (training) or running ones (eval); whether the running
    # statistics move (SAM's second pass freezes them).
    bn_training = True
    bn_update = True

    def forward(self, images):
        v = {self.graph.input[0].name: images, **self.params, **self.running, **self.consts}
        for n in self.graph.node:
            ins = [v[i] if i else None for i in n.input]
            v[n.output[0]] = self.op(n, ins, attrs(n))
        return v[self.graph.output[0].name]

    def op(self, n, x, a):
        t = n.op_type
        if t == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], f"{n.name}: asymmetric pads"
            return F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, a.get("strides", [1, 1]), pads[:2],
                            a.get("dilations", [1, 1]), a.get("group", 1))
        if t == "BatchNormalization":
            # ONNX: running = m·running + (1 − m)·batch; PyTorch's momentum is 1 − m.
            momentum = 1.0 - a.get("momentum", 0.9) if self.bn_update else 0.0
            return F.batch_norm(x[0], x[3], x[4], x[1], x[2], training=self.bn_training,
                                momentum=momentum, eps=a.get("epsilon", 1e-5))
        if t == "Relu":
            return F.relu(x[0])
        if t == "Concat":
            return torch.cat(x, dim=a["axis"])
        if t in ("AveragePool", "MaxPool"):
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], f"{n.name}: asymmetric pads"
            k, s = a["kernel_shape"], a.get("strides", [1, 1])
            if t == "MaxPool":
                return F.max_pool2d(x[0], k, s, pads[:2])
            return F.avg_pool2d(x[0], k, s, pads[:2], count_include_pad=bool(a.get("count_include_pad", 0)))
        if t == "GlobalAveragePool":
            return x[0].mean(dim=(2, 3), keepdim=True)
        if t == "ReduceMean":
            return x[0].mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        if t == "ReduceL2":
            return x[0].pow(2).sum(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1))).sqrt()
        if t == "Flatten":
            axis = a.get("axis", 1)
            return x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
        if t == "Reshape":
            shape = [int(d) if d != 0 else x[0].shape[i] for i, d in enumerate(x[1].tolist())]
            return x[0].reshape(shape)
        if t == "Gemm":
            A = x[0].t() if a.get("transA", 0) else x[0]
            B = x[1].t() if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            return y + a.get("beta", 1.0) * x[2] if len(x) > 2 and x[2] is not None else y
        if t == "MatMul":
            return x[0] @ x[1]
        if t in ("Add", "Sub", "Mul", "Div"):
            return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[t](x[0], x[1])
        if t == "Max":
            return torch.maximum(x[0], x[1])
        if t in ("Identity", "Dropout"):
            return x[0]
        if t == "Constant":
            return torch.tensor(numpy_helper.to_array(a["value"]).copy())
        if t == "Slice":
            starts, ends = x[1].tolist(), x[2].tolist()
            axes = x[3].tolist() if len(x) > 3 else list(range(len(starts)))
            steps = x[4].tolist() if len(x) > 4 else [1] * len(starts)
            index = [slice(None)] * x[0].dim()
            for s, e, ax, st in zip(starts, ends, axes, steps):
                assert st > 0, f"{n.name}: negative Slice step"
                index[ax] = slice(s, min(e, x[0].shape[ax]), st)
            return x[0][tuple(index)]
        if t == "Pad":
            assert a.get("mode", b"constant") in (b"constant", "constant"), f"{n.name}: Pad mode"
            pads = x[1].tolist()
            r = len(pads) // 2
            value = float(x[2]) if len(x) > 2 and x[2] is not None else 0.0
            torch_pads = []
            for d in reversed(range(r)):
                torch_pads += [pads[d], pads[d + r]]
            return F.pad(x[0], torch_pads, value=value)
        raise SystemExit(f"one_step.py: op {t} (node {n.name}) has no PyTorch form here; add it")


def loss_of(case, z, labels, weights):
    counts = torch.tensor(case["class_counts"], dtype=torch.float64)
    loss = case["loss"]
    kind = loss["kind"]
    log_prior = (counts / counts.sum()).log()
    if kind == "ce":
        out = z
    elif kind == "ldam":
        # LDAMLoss of LDAM-DRW: m_c ∝ n_c^(-1/4), max m = max_margin; s·(z − m_y·onehot).
        m = 1.0 / counts.pow(0.25)
        m = (m * (loss["max_margin"] / m.max())).to(torch.float32)
        onehot = F.one_hot(labels, z.shape[1]).to(torch.float32)
        out = loss["scale"] * (z - onehot * m)
    elif kind == "balanced-softmax":
        out = z + (loss["tau"] * log_prior).to(torch.float32)
    elif kind == "vs":
        # VSLoss of Kini et al.: Δ = (1/n)^γ / min (1/n)^γ; z / Δ + τ·log π.
        temp = (1.0 / counts).pow(loss["gamma"])
        delta = (temp / temp.min()).to(torch.float32)
        out = z / delta + (loss["tau"] * log_prior).to(torch.float32)
    else:
        raise SystemExit(f"unknown loss {kind}")
    return F.cross_entropy(out, labels, weight=weights)


def sam_step(net, names, rho, adaptive, forward_loss):
    """davda54/sam: ε = ρ·(w² if adaptive)·g / (‖(|w| if adaptive)·g‖ + 1e-12) over every
    parameter, the gradient at w + ε (running statistics frozen), then w restored."""
    params = [net.params[p] for p in names]
    grads = [p.grad.clone() for p in params]
    norm = torch.norm(torch.stack([((p.abs() if adaptive else 1.0) * g).norm(p=2) for p, g in zip(params, grads)]))
    scale = rho / (norm + 1e-12)
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_((torch.pow(p, 2) if adaptive else 1.0) * g * scale)
    for p in params:
        p.grad = None
    net.bn_update = False
    forward_loss().backward()
    net.bn_update = True
    with torch.no_grad():
        for p, w in zip(params, old):
            p.copy_(w)


def run_case(case):
    torch.manual_seed(0)
    net = Net(onnx.load(case["model"]))
    names, running_names = case["parameters"], case["running"]
    step = case.get("step", {"kind": "plain"})
    if step["kind"] == "head-only":
        # The backbone is frozen in eval mode: lt's state is the head alone.
        if not set(names) <= set(net.params) or running_names:
            raise SystemExit(f"{case['name']}: lt's head parameters {names} are not this script's")
        for p in set(net.params) - set(names):
            net.params[p].requires_grad_(False)
        net.bn_training = False
    elif sorted(names) != sorted(net.params) or sorted(running_names) != sorted(net.running):
        raise SystemExit(f"{case['name']}: lt's parameters/running statistics differ from this script's:\n"
                         f"lt {sorted(names)}\nhere {sorted(net.params)}")
    init_dot = sum(dot(net.params[p]) for p in names)
    b, (c, h, w) = case["batch"], case["image_shape"]
    images = probe(b * c * h * w, IMAGES_SALT).reshape(b, c, h, w)
    labels = torch.tensor([(3 * i + 1) % case["classes"] for i in range(b)])
    weights = torch.tensor(case["class_weights"], dtype=torch.float32)
    sgd = case["sgd"]
    opt = torch.optim.SGD([net.params[p] for p in names], lr=sgd["lr"], momentum=sgd["momentum"],
                          weight_decay=sgd["weight_decay"])

    def criterion(z):
        if step["kind"] != "mixed":
            return loss_of(case, z, labels, weights)
        # mixup_criterion: lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b).
        lam = step["lambda"]
        labels_mix = torch.tensor([(5 * i + 2) % case["classes"] for i in range(b)])
        return lam * loss_of(case, z, labels, weights) + (1 - lam) * loss_of(case, z, labels_mix, weights)

    z = net.forward(images)
    loss = criterion(z)
    opt.zero_grad()
    loss.backward()
    if step["kind"] == "sam":
        sam_step(net, names, step["rho"], step["adaptive"], lambda: criterion(net.forward(images)))
    opt.step()
    bufs = [opt.state[net.params[p]]["momentum_buffer"] for p in names]
    return {
        "init_dot": init_dot,
        "loss": float(loss),
        "logits_dot": dot(z),
        "grad_dot": [dot(g) for g in bufs],
        "grad_norm": float(sum(g.to(torch.float64).pow(2).sum() for g in bufs).sqrt()),
        "param_dot": sum(dot(net.params[p]) for p in names),
        "running_dot": sum(dot(net.running[r]) for r in running_names),
    }


def main():
    cases_path, golden_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    cases = json.load(open(cases_path))["cases"]
    out = []
    for case in cases:
        res = run_case(case)
        spec = {k: v for k, v in case.items() if k not in ("model", "parameters", "running")}
        out.append({"spec": spec, **{k: (float(f"{v:.8g}") if isinstance(v, float) else
                                          [float(f"{x:.8g}") for x in v] if isinstance(v, list) else v)
                                     for k, v in res.items()}})
    golden = {"generator": f"crates/lt-train/tests/golden/one_step.py, torch {torch.__version__}", "cases": out}
    with open(golden_path, "w") as f:
        json.dump(golden, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
