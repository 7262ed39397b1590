"""Tabulates the claims of several pretraining seeds (benchmarks/claims_robustness.sh's OUT):
one row per seed and claim, then each claim's spread over seeds. A remedy's share carries its
standard error over training seeds (paired by seed, as claims.json has it); the spread row sets
the shares' spread over pretraining seeds beside the root-mean-square of those errors, so a
spread no wider than them is training-seed noise, not a difference between models.
    claims_table.py [--grid NAME] OUT SEED...   (NAME: the grid's file stem, default claims)"""
import json
import math
import statistics
import sys
from pathlib import Path

# The remedies the tables show, in their column order.
REMEDIES = ("coop_nfl", "coop_sub", "coop_sub_nfl")


def load(out: Path, seed: str, grid: str):
    p = out / f"seed{seed}" / grid / "report" / "claims.json"
    return json.loads(p.read_text()) if p.exists() else None


def spread(xs):
    if not xs:
        return "–"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.2f} ± {sd:.2f} (min {min(xs):.2f})"


def share(r, se, m):
    if m not in r:
        return "–"
    if r[m] is None:
        return "no drop"
    return f"{100 * r[m]:.0f} ± {100 * se[m]:.0f} %" if m in se else f"{100 * r[m]:.0f} %"


def noise(es):
    """The root-mean-square standard error of the per-model shares."""
    return f"; s.e. {math.sqrt(statistics.mean(e * e for e in es)):.2f}" if es else ""


def main():
    args = sys.argv[1:]
    grid = "claims"
    if args[:1] == ["--grid"]:
        grid, args = args[1], args[2:]
    out, seeds = Path(args[0]), args[1:]
    claims = {s: load(out, s, grid) for s in seeds}
    print("## Claim (ii): CoOp's novel accuracy below zero-shot (base-to-novel)\n")
    print("| pretraining seed | dataset | zero-shot novel | CoOp novel per seed | drop mean / min "
          "| NFL recovered | SubPT recovered | SubPT+NFL recovered | holds |")
    print("|---|---|---|---|---|---|---|---|---|")
    drops, recov, errs = {}, {}, {}
    for s, c in claims.items():
        if c is None:
            print(f"| {s} | (no claims.json) | | | | | | | |")
            continue
        for d in c["novel_drop"]:
            r = {m: v[1] for m, v in d["remedies"].items()}
            se = d.get("recovery_se", {})
            drops.setdefault(d["dataset"], []).append(d["drop_mean"])
            for m, v in r.items():
                if v is None:  # no drop: nothing to win back, no share to pool
                    continue
                recov.setdefault((d["dataset"], m), []).append(100 * v)
                if m in se:
                    errs.setdefault((d["dataset"], m), []).append(100 * se[m])
            coop = " / ".join(f"{v:.2f}" for v in d["coop"].values())
            rec = [share(r, se, m) for m in REMEDIES]
            print(f"| {s} | {d['dataset']} | {d['zero_shot']:.2f} | {coop} | "
                  f"{d['drop_mean']:.2f} / {d['drop_min']:.2f} | {' | '.join(rec)} | "
                  f"{'yes' if d['holds'] else 'no'} |")
    print("\n| dataset | drop over pretraining seeds | NFL recovered % | SubPT recovered % | SubPT+NFL recovered % |")
    print("|---|---|---|---|---|")
    for ds, xs in drops.items():
        rs = [spread(recov.get((ds, m), [])) + noise(errs.get((ds, m), []))
              for m in REMEDIES]
        print(f"| {ds} | {spread(xs)} | {' | '.join(rs)} |")
    print("\n## Claim (i): CoOp's accuracy rises then falls; SubPT's does not\n")
    print("| pretraining seed | dataset | trained on | tested on | zero-shot | CoOp first / peak (epoch) / end ± std "
          "| CoOp fall | SubPT peak / end ± std | SubPT fall | holds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s, c in claims.items():
        for r in (c or {}).get("rise_and_fall", []):
            co, su = r["coop"], r["subpt"]
            zs = r.get("zero_shot")
            zs = "–" if zs is None else f"{zs:.2f}"
            print(f"| {s} | {r['dataset']} | {r['subsample']} | {r['subset']} | {zs} | "
                  f"{co['first']:.2f} / {co['peak']:.2f} ({co['peak_epoch']}) / {co['end']:.2f} ± {co['end_std']:.2f} | "
                  f"{co['fall']:.2f} | {su['peak']:.2f} / {su['end']:.2f} ± {su['end_std']:.2f} | {su['fall']:.2f} | "
                  f"{'yes' if r['holds'] else 'no'} |")


if __name__ == "__main__":
    main()
