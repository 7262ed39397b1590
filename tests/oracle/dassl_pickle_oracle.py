"""Writes and loads few-shot caches the way Dassl does (pickle of {"train": [Datum], "val": [Datum]}),
for trainer/tests/fewshot_pickle.rs.

Usage: dassl_pickle_oracle.py PARAMS.json -> JSON on stdout.
  {"mode": "write", "out": path, "train": [[impath, label, classname], ...], "val": [...] | null}
      pickles Datum objects with the highest protocol (val left out when null), prints {}.
  {"mode": "read", "path": path}
      unpickles the file, checks every item is a Datum with int label/domain and str fields,
      prints {"train": [[impath, label, domain, classname], ...], "val": [...] | null}.
The Datum class is a stand-in defined here under Dassl's module path
(dassl.data.datasets.base_dataset), with the attributes Dassl's instances carry.
"""
import json
import os
import pickle
import sys
import tempfile

STUB = '''
class Datum:
    def __init__(self, impath="", label=0, domain=0, classname=""):
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname
'''


def install_stub():
    root = tempfile.mkdtemp()
    pkg = os.path.join(root, "dassl", "data", "datasets")
    os.makedirs(pkg)
    for d in ("dassl", "dassl/data", "dassl/data/datasets"):
        open(os.path.join(root, d, "__init__.py"), "w").close()
    with open(os.path.join(pkg, "base_dataset.py"), "w") as f:
        f.write(STUB)
    sys.path.insert(0, root)
    from dassl.data.datasets.base_dataset import Datum
    return Datum


def main():
    with open(sys.argv[1]) as f:
        p = json.load(f)
    Datum = install_stub()
    if p["mode"] == "write":
        make = lambda entries: [Datum(impath=e[0], label=e[1], domain=0, classname=e[2]) for e in entries]
        data = {"train": make(p["train"])}
        if p["val"] is not None:
            data["val"] = make(p["val"])
        with open(p["out"], "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        json.dump({}, sys.stdout)
        return
    with open(p["path"], "rb") as f:
        data = pickle.load(f)
    assert isinstance(data, dict), type(data)

    def dump(items):
        out = []
        for d in items:
            assert type(d) is Datum, type(d)
            assert isinstance(d._impath, str) and isinstance(d._classname, str)
            assert type(d._label) is int and type(d._domain) is int
            out.append([d._impath, d._label, d._domain, d._classname])
        return out

    json.dump({"train": dump(data["train"]), "val": dump(data["val"]) if "val" in data else None}, sys.stdout)


if __name__ == "__main__":
    main()
