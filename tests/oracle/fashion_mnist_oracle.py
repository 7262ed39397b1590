"""Expected Fashion-MNIST conversion, read straight from the idx files with numpy
(reference for trainer/tests/data_verify.rs).

Usage: fashion_mnist_oracle.py PARAMS.json -> JSON on stdout.
PARAMS = {"source": dir, "val_per_class": V, "cap": C}
Output: {"train"|"val"|"test": [[source_index, label, [28*28 pixels row-major]], ...]} in file
order, where val takes the first V images of each class of the train file, train the next C
(after those V), test the first C of each class of the t10k file; val is capped at C too.
"""
import gzip
import json
import os
import sys

import numpy as np


def load(source, stem):
    path = os.path.join(source, stem)
    opener = gzip.open if os.path.exists(path + ".gz") else open
    with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    with open(sys.argv[1]) as f:
        p = json.load(f)
    v, cap = p["val_per_class"], p["cap"]
    out = {"train": [], "val": [], "test": []}
    for prefix in ("train", "t10k"):
        labels = load(p["source"], f"{prefix}-labels-idx1-ubyte")
        images = load(p["source"], f"{prefix}-images-idx3-ubyte")
        for label in range(10):
            where = np.flatnonzero(labels == label)
            if prefix == "t10k":
                picks = [("test", where[:cap])]
            else:
                picks = [("val", where[: min(v, cap)]), ("train", where[v: v + cap])]
            for split, idx in picks:
                for i in idx:
                    out[split].append([int(i), label, images[i].reshape(-1).tolist()])
    for split in out:
        out[split].sort(key=lambda e: e[0])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
