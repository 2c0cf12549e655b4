"""Write a CIFAR-10-format source of random bytes for the lt-data bench.

5 train files x 10,000 records + 1 test file of 10,000: 1 label byte (0..9) + 3072 image
bytes each, like cifar-10-batches-bin. Usage: make_source.py DIR [SEED]
"""
import os
import sys

import numpy as np


def main() -> None:
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        rec = rng.integers(0, 256, size=(10_000, 3073), dtype=np.uint8)
        # Balanced labels, shuffled: 1,000 of each class per file.
        rec[:, 0] = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), 1000))
        rec.tofile(os.path.join(out, name))


if __name__ == "__main__":
    main()
