"""Few-shot subsets as a Dassl/CoOp run draws them, with CPython's `random`
(reference for trainer/tests/fewshot_oracle.rs).

Usage: fewshot_oracle.py CASES.json -> JSON on stdout.
CASES = [{"seed": int, "shots": K, "sample_val": bool,
          "train": [[relpath, label, classname], ...], "val": [...]}, ...]
Output per case: {"train": [relpath, ...], "val": [relpath, ...] or null}.

Procedure (spec section 3.2): seed the global generator with `seed`; the train list is reduced
to K items per label, then (unless `sample_val` is false, as for ImageNet) the val list to
min(K, 4). Per list: labels are visited in the order they first occur, each label's items kept
in list order; a label with at least K items contributes random.sample(items, K), one with
fewer contributes all its items without touching the generator.
"""
import json
import random
import sys


def reduce_to_shots(entries, shots):
    by_label = {}
    for entry in entries:
        by_label.setdefault(entry[1], []).append(entry)
    chosen = []
    for members in by_label.values():
        if len(members) >= shots:
            chosen += random.sample(members, shots)
        else:
            chosen += members
    return chosen


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = []
    for case in cases:
        random.seed(case["seed"])
        k = case["shots"]
        train = reduce_to_shots(case["train"], k)
        val = reduce_to_shots(case["val"], min(k, 4)) if case["sample_val"] else None
        results.append({
            "train": [e[0] for e in train],
            "val": None if val is None else [e[0] for e in val],
        })
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
