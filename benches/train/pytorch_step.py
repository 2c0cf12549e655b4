#!/usr/bin/env python3
"""PyTorch CPU training-step throughput for DenseNet-BC or a CIFAR ResNet on CIFAR-sized input.

The counterpart of `lt-train bench`: same network shape as lt's presets
(densenet-bc-40-k12 / densenet-bc-100-k12: CIFAR stem, bias-free convs, bottleneck
4k, compression 0.5; resnet20/32/44/56/110: LDAM-DRW's resnet_cifar.py, option-A
shortcuts), a fixed seeded random batch, and per step: forward in train
mode, class-weighted cross-entropy, backward, SGD(lr 0.1, momentum 0.9, wd 5e-4).

    python pytorch_step.py --depth 40 --batch-size 64 --steps 10 --warmup 2 --threads 2 --json
    python pytorch_step.py --arch resnet32 --batch-size 64 --steps 10 --warmup 2 --threads 2 --json
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), output concatenated to the input."""

    def __init__(self, cin, growth, bn_size=4):
        super().__init__()
        mid = bn_size * growth
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, growth, 3, padding=1, bias=False)

    def forward(self, x):
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return torch.cat([x, h], 1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1-AvgPool2."""

    def __init__(self, cin, cout):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2)


class DenseNetBC(nn.Module):
    def __init__(self, depth=40, growth=12, compression=0.5, num_classes=10):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n+4 (got {depth})")
        layers = (depth - 4) // 6  # 40 -> 6, 100 -> 16
        c = 2 * growth
        mods = [nn.Conv2d(3, c, 3, padding=1, bias=False)]
        for b in range(3):
            for _ in range(layers):
                mods.append(Bottleneck(c, growth))
                c += growth
            if b < 2:
                out = max(1, int(c * compression))
                mods.append(Transition(c, out))
                c = out
        self.features = nn.Sequential(*mods)
        self.norm5 = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        h = F.relu(self.norm5(self.features(x)))
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.classifier(h)


class BasicBlock(nn.Module):
    """LDAM-DRW's CIFAR block; option A shortcut: every second pixel, channels zero-padded."""

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or cin != planes else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class CifarResNet(nn.Module):
    """resnet{6n+2}: 3x3 stem 3->16, three stages of n blocks (16/32/64), GAP, linear."""

    def __init__(self, depth=32, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(cin, planes, s))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=None, help="resnet20/32/44/56/110 (default: DenseNet-BC by --depth)")
    ap.add_argument("--depth", type=int, default=40, choices=[40, 100])
    ap.add_argument("--growth", type=int, default=12)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.arch:
        if not (args.arch.startswith("resnet") and args.arch[6:] in ("20", "32", "44", "56", "110")):
            ap.error(f"--arch must be resnet20/32/44/56/110 (got {args.arch})")
        model = CifarResNet(int(args.arch[6:]), args.classes)
    else:
        model = DenseNetBC(args.depth, args.growth, 0.5, args.classes)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(args.seed + 1)
    images = torch.randn(args.batch_size, 3, 32, 32, generator=g)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=g)
    class_w = torch.rand(args.classes, generator=g) + 0.1  # positive class weights

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels, weight=class_w)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    final_loss = loss.item()  # (CPU ops are synchronous; this just reads the last loss)
    dt = time.perf_counter() - t0

    ms = dt * 1000.0 / max(args.steps, 1)
    ips = args.batch_size * args.steps / dt if dt > 0 else float("nan")
    arch = args.arch or f"densenet-bc-{args.depth}-k{args.growth}"
    if args.json:
        print(json.dumps({
            "framework": "pytorch",
            "torch_version": torch.__version__,
            "arch": arch,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup": args.warmup,
            "threads": torch.get_num_threads(),
            "parameters": params,
            "images_per_second": ips,
            "ms_per_step": ms,
            "final_loss": final_loss,
        }, indent=2))
    else:
        print(f"pytorch {torch.__version__} {arch} batch {args.batch_size} ({torch.get_num_threads()} threads, "
              f"{params} params): {ips:.1f} images/s, {ms:.1f} ms/step over {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
