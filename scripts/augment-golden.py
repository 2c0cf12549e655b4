"""Golden outputs of torchvision's AutoAugment/RandAugment operations on uint8 tensors, for
crates/lt-train/tests/it/augment.rs (which pins them: CI has no torch).

    .venv-torch/bin/python scripts/augment-golden.py > crates/lt-train/tests/it/augment_golden.json

Each case: an operation, its magnitude bin of `bins` (torchvision's _augmentation_space for
RandAugment, 31 bins, or AutoAugment, 10), a sign, the shape [c, h, w], and the output bytes
(hex, CHW) of `_apply_op` (nearest, fill None) on the test image: byte i of the CHW image is
(i * 37 + 11 * (i // (h*w)) + 40) % 200 + 20 (values 20..219, not the full range, so that
autocontrast and equalize act).
"""
import json
import torch
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import AutoAugment, RandAugment, _apply_op


def image(c, h, w):
    n = c * h * w
    v = [(i * 37 + 11 * (i // (h * w)) + 40) % 200 + 20 for i in range(n)]
    return torch.tensor(v, dtype=torch.uint8).reshape(c, h, w)


ops = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
       "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert"]
# The 16x16 image checks only the geometric operations (and they alone); the others use the
# 3x8x10 and 1x7x9 images.
GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
cases = []
for shape in ([3, 8, 10], [1, 16, 16], [1, 7, 9]):
    c, h, w = shape
    img = image(c, h, w)
    spaces = {31: RandAugment()._augmentation_space(31, (h, w)),
              10: AutoAugment()._augmentation_space(10, (h, w))}
    for bins, bins_list in ((31, [0, 9, 30]), (10, [2, 9])):
        space = spaces[bins]
        for op in ops:
            if op not in space or (h == 16 and op not in GEOMETRIC):
                continue
            mags, signed = space[op]
            for b in (bins_list if mags.ndim > 0 else [0]):
                for negative in ([False, True] if signed else [False]):
                    m = float(mags[b].item()) if mags.ndim > 0 else 0.0
                    if negative:
                        m = -m
                    out = _apply_op(img.clone(), op, m, interpolation=InterpolationMode.NEAREST, fill=None)
                    cases.append({"op": op, "bins": bins, "bin": b, "negative": negative, "magnitude": m,
                                  "shape": shape, "out": bytes(out.flatten().tolist()).hex()})
print(json.dumps({"torchvision": torchvision.__version__, "torch": torch.__version__, "cases": cases}, separators=(",", ":")))
