"""ReLU backward dy * [y > 0] on a [64, C, 32, 32] activation: the forms standard ONNX allows.

    PYTHONPATH=.ort/cpu .venv-test/bin/python benches/train/ops/relu_mask.py [C]
"""
import sys

import numpy as np
from onnx import helper, numpy_helper

from common import median_ms, session

c = int(sys.argv[1]) if len(sys.argv) > 1 else 96
rng = np.random.default_rng(0)
y = np.maximum(rng.standard_normal((64, c, 32, 32), np.float32), 0)
dy = rng.standard_normal((64, c, 32, 32), np.float32)
consts = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("zero", 0), ("one", 1))]
n = helper.make_node
forms = {
    "Greater+Cast+Mul (lt)": [n("Greater", ["y", "zero"], ["b"]), n("Cast", ["b"], ["m"], to=1), n("Mul", ["dy", "m"], ["out"])],
    "Clip+Ceil+Mul": [n("Clip", ["y", "zero", "one"], ["a"]), n("Ceil", ["a"], ["m"]), n("Mul", ["dy", "m"], ["out"])],
    "Min+Ceil+Mul": [n("Min", ["y", "one"], ["a"]), n("Ceil", ["a"], ["m"]), n("Mul", ["dy", "m"], ["out"])],
    "Greater+Where": [n("Greater", ["y", "zero"], ["b"]), n("Where", ["b", "dy", "zero"], ["out"])],
    "Sign+Mul": [n("Sign", ["y"], ["m"]), n("Mul", ["dy", "m"], ["out"])],
}
want = dy * (y > 0)
for name, nodes in forms.items():
    used = [t for t in consts if any(t.name in node.input for node in nodes)]
    ms, out = median_ms(session(nodes, {"y": y, "dy": dy}, used), {"y": y, "dy": dy})
    assert np.array_equal(out, want), name
    print(f"C={c} {name:24s} {ms:6.2f} ms")
