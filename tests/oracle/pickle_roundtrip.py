"""CPython's pickle as the peer of subpt_trainer::pickle.

make --out DIR   writes corpus_p{0..5}.pkl (one corpus of values, every protocol),
                 fewshot.pkl (a Dassl-style few-shot cache: {"train": [Datum], "val": [Datum]},
                 highest protocol) and fewshot.json (the same records as JSON).
check --dir DIR  loads rt_p{k}.pkl (corpus_p{k}.pkl read and re-written by Rust) and asserts each
                 equals the corpus; loads datum_rust.pkl (written by Rust from fewshot.json) and
                 asserts it is a list of Datum instances carrying exactly those records.
"""
import argparse
import collections
import json
import math
import os
import pickle
import sys
import types


class Datum:
    """Stands in for dassl.data.datasets.base_dataset.Datum (same attributes)."""

    def __init__(self, impath="", label=0, domain=0, classname=""):
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    def __eq__(self, other):
        return type(other) is Datum and vars(self) == vars(other)

    def __repr__(self):
        return f"Datum({vars(self)})"


def register_dassl():
    """Makes pickle resolve dassl.data.datasets.base_dataset.Datum to the class above."""
    names = ["dassl", "dassl.data", "dassl.data.datasets", "dassl.data.datasets.base_dataset"]
    for n in names:
        sys.modules.setdefault(n, types.ModuleType(n))
    Datum.__module__ = names[-1]
    sys.modules[names[-1]].Datum = Datum


def corpus():
    shared = [1, "two", 3.0]
    return {
        "none": None,
        "bools": [True, False],
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31,
                 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, -(2**100), 10**30],
        "floats": [0.0, -0.0, -1.5, 1e300, 5e-324, math.inf, -math.inf, 0.1],
        "strings": ["", "abc", "ünïcödé €", "line\nbreak", "quote'\"back\\slash", "\x00\x7f"],
        "bytes": [b"", b"\x00\xff\x80abc", bytearray(b"ba")],
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)],
        "long_list": list(range(2500)),
        "dict": {1: "int key", "k": [1, {"deep": (None,)}], (1, 2): "tuple key", 2.5: b"x"},
        "set": {1, 2, 3},
        "frozenset": frozenset({"x", "y"}),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "shared": [shared, shared, {"again": shared}],
        "complex": 1.5 - 2j,
        "class": collections.OrderedDict,
        "function": os.path.join,
        "datum": Datum("/img/a.jpg", 3, 1, "cat"),
        "nested": [[[[[["bottom"]]]]]],
    }


def fewshot():
    train = [Datum(f"/data/images/{c}/{i}.jpg", k, 0, c)
             for k, c in enumerate(["face", "leopard", "motorbike"]) for i in range(2)]
    val = [Datum("/data/images/ünï/0.jpg", 7, 2, "ünï class")]
    return {"train": train, "val": val}


def as_records(items):
    return [{"impath": d._impath, "label": d._label, "domain": d._domain,
             "classname": d._classname} for d in items]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "check"])
    ap.add_argument("--out")
    ap.add_argument("--dir")
    a = ap.parse_args()
    register_dassl()
    if a.cmd == "make":
        os.makedirs(a.out, exist_ok=True)
        for proto in range(6):
            with open(os.path.join(a.out, f"corpus_p{proto}.pkl"), "wb") as f:
                pickle.dump(corpus(), f, protocol=proto)
        data = fewshot()
        with open(os.path.join(a.out, "fewshot.pkl"), "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        with open(os.path.join(a.out, "fewshot.json"), "w") as f:
            json.dump({k: as_records(v) for k, v in data.items()}, f)
        return
    failures = []
    want = corpus()
    for proto in range(6):
        with open(os.path.join(a.dir, f"rt_p{proto}.pkl"), "rb") as f:
            got = pickle.load(f)
        for key in want:
            if got.get(key) != want[key] or type(got.get(key)) is not type(want[key]):
                failures.append(f"protocol {proto}, {key!r}: {got.get(key)!r} != {want[key]!r}")
        if set(got) != set(want):
            failures.append(f"protocol {proto}: keys {sorted(map(str, got))}")
    with open(os.path.join(a.dir, "fewshot.json")) as f:
        records = json.load(f)
    with open(os.path.join(a.dir, "datum_rust.pkl"), "rb") as f:
        items = pickle.load(f)
    expected = records["train"] + records["val"]
    if not isinstance(items, list) or not all(type(d) is Datum for d in items):
        failures.append(f"datum_rust.pkl is not a list of Datum: {items!r}")
    elif as_records(items) != expected:
        failures.append(f"datum_rust.pkl records {as_records(items)} != {expected}")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
