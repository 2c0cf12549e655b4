"""Exports LDAM-DRW's CIFAR ResNet-32 (linear and NormedLinear heads) and torchvision's
resnet18 with torch.onnx.export, and writes their graphs WITHOUT WEIGHT DATA into
exported/ next to this script, for `crates/lt-train/tests/it/graph_import.rs` (CI has no
torch; the test re-fills every stripped initializer with seeded values of its dims).

Stripping: every float initializer with more than one element keeps its name, data type and
dims but loses its data; int64 initializers (shape constants) and float scalars (e.g. the
clamp's eps) are kept, since they are part of the graph's meaning.

Two exporter forms (torch 2.15; both opset 17 requested, static input [2, 3, H, W]):

- `*_torchscript.onnx`: the TorchScript exporter, `dynamo=False,
  training=TrainingMode.TRAINING, do_constant_folding=False`. This is the form to train
  from: BatchNormalization stays (training_mode=1, running statistics kept), every
  initializer keeps its PyTorch name, and `F.normalize(self.weight)` stays a computation of
  `linear.weight`. The option-A shortcut's pads come as a shape subgraph (Shape, Gather,
  Unsqueeze, Concat, ConstantOfShape, Cast, Reshape, Slice, Transpose) that lt folds.
- `*_default.onnx`: what `torch.onnx.export(model, x, f, opset_version=17)` emits by default
  in torch 2.15, i.e. the dynamo exporter (needs onnxscript). It writes opset 18 (it cannot
  convert Pad down to 17), bakes the batch size into Reshape/Expand targets, and its
  optimizer folds every BatchNorm into the preceding conv and `F.normalize(self.weight)`
  into a constant even with training=TRAINING: the graph imports and trains, but it is not
  the network PyTorch trains (no BatchNorm, a frozen classifier); export with the
  TorchScript form above to train.

Regenerate (needs .venv-torch: benches/train/install-torch.sh, then
`.venv-torch/bin/pip install onnx onnxscript pillow` and `pip install --no-deps torchvision`):

    .venv-torch/bin/python crates/lt-train/tests/golden/export_models.py
"""
import os
import sys
import warnings

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exported")


# --- LDAM-DRW's models/resnet_cifar.py (Cao et al. 2019), as published -------------------
class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # Option A: every second pixel, channels zero-padded.
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class NormedLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(in_features, out_features))
        self.weight.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)

    def forward(self, x):
        return F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))


class ResNet_s(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, use_norm=False):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = NormedLinear(64, num_classes) if use_norm else nn.Linear(64, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def resnet32(num_classes=10, use_norm=False):
    return ResNet_s(BasicBlock, [5, 5, 5], num_classes=num_classes, use_norm=use_norm)


# -------------------------------------------------------------------------------------------
def strip(path):
    m = onnx.load(path)
    # Exporter annotations (source locations, intermediate shapes) are not the graph.
    m.graph.ClearField("value_info")
    for n in m.graph.node:
        n.ClearField("metadata_props")
        n.ClearField("doc_string")
    for t in m.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type == onnx.TensorProto.FLOAT and n > 1:
            t.ClearField("raw_data")
            t.ClearField("float_data")
    onnx.save(m, path)
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    return os.path.getsize(path)


def export(model, size, name, default):
    model.train()
    x = torch.randn(2, 3, size, size)
    path = os.path.join(HERE, f"{name}_{'default' if default else 'torchscript'}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if default:
            # external_data=False: one file (the default writes the weights beside it).
            torch.onnx.export(model, (x,), path, opset_version=17, external_data=False)
        else:
            torch.onnx.export(
                model,
                (x,),
                path,
                opset_version=17,
                dynamo=False,
                training=torch.onnx.TrainingMode.TRAINING,
                do_constant_folding=False,
                input_names=["images"],
                output_names=["logits"],
            )
    print(f"{os.path.relpath(path)}: {strip(path)} bytes", file=sys.stderr)


def main():
    from torchvision.models import resnet18

    os.makedirs(HERE, exist_ok=True)
    torch.manual_seed(0)
    export(resnet32(10), 32, "resnet32", default=False)
    export(resnet32(10, use_norm=True), 32, "resnet32_normed", default=False)
    export(resnet18(num_classes=10), 32, "resnet18", default=False)
    export(resnet32(10, use_norm=True), 32, "resnet32_normed", default=True)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
