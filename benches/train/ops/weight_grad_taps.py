"""The k*k shifted copies of dY [64, 12, H, W] behind a 3x3 conv's weight gradient.

    PYTHONPATH=.ort/cpu .venv-test/bin/python benches/train/ops/weight_grad_taps.py
"""
import numpy as np
from onnx import helper, numpy_helper

from common import ints, median_ms, session

N, O = 64, 12
node = helper.make_node
onehot = np.zeros((9, 1, 3, 3), np.float32)
for i in range(3):
    for j in range(3):
        onehot[i * 3 + j, 0, 2 - i, 2 - j] = 1


def pads_and_concat(hw):
    nodes, inits, parts = [], [], []
    for i in range(3):
        for j in range(3):
            top, left = i - 1, j - 1
            if (top, left) == (0, 0):
                parts.append("dy")
                continue
            inits.append(ints([0, 0, top, left, 0, 0, -top, -left], f"p{i}{j}c"))
            nodes.append(node("Pad", ["dy", f"p{i}{j}c"], [f"p{i}{j}"]))
            parts.append(f"p{i}{j}")
    nodes.append(node("Concat", parts, ["out"], axis=1))
    return nodes, inits, "tap-major"


def onehot_images(hw):
    inits = [numpy_helper.from_array(onehot, "w"), ints([N * O, 1, hw, hw], "s0"), ints([N, O * 9, hw, hw], "s1")]
    nodes = [node("Reshape", ["dy", "s0"], ["r"]), node("Conv", ["r", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
             node("Reshape", ["c", "s1"], ["out"])]
    return nodes, inits, "o-major"


def onehot_grouped(hw):
    w = numpy_helper.from_array(np.tile(onehot, (O, 1, 1, 1)), "w")
    return [node("Conv", ["dy", "w"], ["out"], kernel_shape=[3, 3], pads=[1] * 4, group=O)], [w], "o-major"


for hw in (32, 16, 8):
    dy = np.random.default_rng(0).standard_normal((N, O, hw, hw), np.float32)
    ref = None
    for name, form in (("9 Pads + Concat", pads_and_concat), ("one-hot Conv over N*O images", onehot_images),
                       ("grouped one-hot Conv (lt)", onehot_grouped)):
        nodes, inits, order = form(hw)
        ms, out = median_ms(session(nodes, {"dy": dy}, inits), {"dy": dy})
        if order == "o-major":  # rows (o, tap) -> (tap, o)
            out = out.reshape(N, O, 9, hw, hw).transpose(0, 2, 1, 3, 4).reshape(N, 9 * O, hw, hw)
        ref = out if ref is None else ref
        assert np.array_equal(out, ref), name
        print(f"{hw}x{hw} {name:30s} {ms:6.2f} ms")
