"""Reference values from CPython's `random.Random` for the Rust port (trainer/tests/python_random.rs).

Usage: random_oracle.py CASES.json  -> JSON on stdout.
CASES = [{"seed": "<decimal int, may be negative or huge>", "ops": [{"op": ..., ...}, ...]}, ...]
Each case seeds one generator and applies its ops in order on the same stream.
"""
import json
import random
import struct
import sys


def float_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def apply(rng, op):
    name = op["op"]
    if name == "getrandbits":
        return format(rng.getrandbits(op["k"]), "x")
    if name == "random":
        return float_bits(rng.random())
    if name == "uniform":
        return float_bits(rng.uniform(op["a"], op["b"]))
    if name == "randbelow":
        return str(rng._randbelow(int(op["n"])))
    if name == "sample":
        return rng.sample(range(op["n"]), op["k"])
    if name == "shuffle":
        xs = list(range(op["n"]))
        rng.shuffle(xs)
        return xs
    if name == "randint":
        return rng.randint(op["a"], op["b"])
    if name == "randrange":
        return rng.randrange(op["start"], op["stop"], op["step"])
    raise ValueError(f"unknown op {name!r}")


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = []
    for case in cases:
        rng = random.Random()
        rng.seed(int(case["seed"]))
        out.append([apply(rng, op) for op in case["ops"]])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
