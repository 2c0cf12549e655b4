"""The lt-data build steps written with numpy + pyarrow: the bench's reference.

Reads a CIFAR-10 binary directory (5 train files + test file), checks sizes and labels,
takes the exp long-tail subset (IF given, n_max = smallest class, per-class seeded shuffle,
first n_i), builds the instance, class-balanced and random-over manifests, and writes
samples.parquet (uncompressed, row groups of 8192), subset.parquet and the manifests (snappy)
plus dataset.json with sha256 hashes: the same files, settings and work as
`lt-data build --source cifar10:DIR --profile exp --imbalance IF
 --resample instance,class-balanced,random-over`.

Usage: reference.py SRC OUT [IF] [SEED] [EPOCHS]
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REC = 3073
IMG = 3072


def read_split(paths):
    parts = []
    for p in paths:
        size = os.path.getsize(p)
        if size % REC:
            sys.exit(f"{p}: size {size} is not a multiple of {REC}")
        a = np.fromfile(p, dtype=np.uint8).reshape(-1, REC)
        bad = np.nonzero(a[:, 0] >= 10)[0]
        if len(bad):
            sys.exit(f"{p}: record {bad[0]} has label {a[bad[0], 0]}")
        parts.append(a)
    a = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return a[:, 0].astype(np.uint16), np.ascontiguousarray(a[:, 1:])


def binary_array(images):
    n = images.shape[0]
    offsets = np.arange(0, (n + 1) * IMG, IMG, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(images.reshape(-1))])


def write(table, path, compression, row_group_size=None):
    pq.write_table(table, path, compression=compression, row_group_size=row_group_size)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    imbalance = float(sys.argv[3]) if len(sys.argv) > 3 else 100.0
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    train_l, train_i = read_split([os.path.join(src, f"data_batch_{i}.bin") for i in range(1, 6)])
    test_l, test_i = read_split([os.path.join(src, "test_batch.bin")])
    c = 10
    rng = np.random.default_rng(seed)
    counts = np.bincount(train_l, minlength=c)
    n_max = int(counts.min())
    targets = [math.floor(n_max * (1 / imbalance) ** (i / (c - 1))) for i in range(c)]
    subset = np.sort(np.concatenate([rng.permutation(np.nonzero(train_l == k)[0])[: targets[k]] for k in range(c)]))
    sub_l = train_l[subset]
    by_class = [subset[sub_l == k] for k in range(c)]
    manifests = {}
    for name in ["instance", "class-balanced", "random-over"]:
        ep, pos, idx = [], [], []
        for e in range(epochs):
            if name == "instance":
                order = rng.permutation(subset)
            elif name == "class-balanced":
                cls = rng.integers(0, c, size=len(subset))
                pick = rng.random(len(subset))
                sizes = np.array([len(b) for b in by_class])
                within = (pick * sizes[cls]).astype(np.int64)
                starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
                order = np.concatenate(by_class)[starts[cls] + within]
            else:
                top = max(len(b) for b in by_class)
                extra = [b[rng.integers(0, len(b), size=top - len(b))] for b in by_class]
                order = rng.permutation(np.concatenate(by_class + extra))
            ep.append(np.full(len(order), e, dtype=np.uint32))
            pos.append(np.arange(len(order), dtype=np.uint32))
            idx.append(order.astype(np.uint32))
        manifests[name] = (np.concatenate(ep), np.concatenate(pos), np.concatenate(idx))

    staging = out + ".partial"
    os.makedirs(staging, exist_ok=True)
    n_tr, n_te = len(train_l), len(test_l)
    samples = pa.table(
        {
            "split": pa.array(["train"] * n_tr + ["test"] * n_te, pa.string()),
            "index": pa.array(np.concatenate([np.arange(n_tr), np.arange(n_te)]).astype(np.uint32)),
            "label": pa.array(np.concatenate([train_l, test_l])),
            "image": pa.chunked_array([binary_array(train_i), binary_array(test_i)]),
        }
    )
    files = {"samples.parquet": write(samples, os.path.join(staging, "samples.parquet"), "none", 8192)}
    sub = pa.table({"index": pa.array(subset.astype(np.uint32)), "label": pa.array(sub_l)})
    files["subset.parquet"] = write(sub, os.path.join(staging, "subset.parquet"), "snappy")
    for name, (e, p, i) in manifests.items():
        t = pa.table({"epoch": pa.array(e), "position": pa.array(p), "index": pa.array(i)})
        files[f"manifest-{name}.parquet"] = write(t, os.path.join(staging, f"manifest-{name}.parquet"), "snappy")
    meta = {
        "source": {"spec": f"cifar10:{src}", "kind": "cifar10"},
        "profile": {"kind": "exp", "imbalance": imbalance, "n_max": n_max},
        "seed": seed,
        "source_counts": counts.tolist(),
        "subset_counts": np.bincount(sub_l, minlength=c).tolist(),
        "test_counts": np.bincount(test_l, minlength=c).tolist(),
        "files": files,
    }
    with open(os.path.join(staging, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=2)
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)
    os.rename(staging, out)


if __name__ == "__main__":
    main()
