"""Shared helpers of the single-op onnxruntime micro-benchmarks (see README.md)."""
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def ints(values, name):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def session(nodes, inputs, initializers=(), threads=2):
    """A CPU session over `nodes`; `inputs` maps names to arrays (fed as graph inputs)."""
    graph = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def median_ms(sess, feeds, runs=10, rounds=5):
    """Median over `rounds` of the mean time of `runs` runs, after 3 warm-up runs; and the output."""
    for _ in range(3):
        out = sess.run(None, feeds)[0]
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        times.append((time.perf_counter() - t) / runs * 1e3)
    return sorted(times)[len(times) // 2], out
