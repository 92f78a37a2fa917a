"""
A speed change, measured: training steps/s of the working tree against an earlier commit, through the real
loop (train.py), the two run in turn (base, ours, base, ours, ...) so that load on the machine hits both alike.

    python bench/train_ab.py --base=bb8ad8b --models=ilm,mlm --dataset=star/medium
    python bench/train_ab.py --base=HEAD~1 --sizes=128/2/2,256/4/4 --rounds=3

The base commit is checked out into a scratch git worktree and runs on this tree's prepared data (an absolute
--dataset path), so only the code differs. Each run is one train.py process (bench/train_throughput.py's run).
Writes bench/results/train_ab_<dataset>.json: per model and size, each side's steps/s per round, the medians
and the ratio ours / base.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import ROOT, provenance, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the commit to measure against (anything git rev-parse takes)")
    ap.add_argument("--models", default="ilm,mdlm,mlm,flexmdm,editflow")
    ap.add_argument("--sizes", default="128/2/2")
    ap.add_argument("--dataset", default="star/medium")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--work", default="/tmp/nanoxlm_ab")
    ap.add_argument("--out", default=None, help="default bench/results/train_ab_<dataset>.json")
    args = ap.parse_args()
    git = ["git", "-C", ROOT]
    r = subprocess.run(git + ["rev-parse", "--verify", "--quiet", args.base + "^{commit}"], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"--base={args.base}: not a commit of this repository (git log --oneline shows them)")
    base = r.stdout.strip()
    data = os.path.join(ROOT, "data", args.dataset)
    if not os.path.exists(os.path.join(data, "meta.json")):
        sys.exit(f"--dataset={args.dataset}: {data}/meta.json not found; run data/{args.dataset.split('/')[0]}/prepare.py")
    tree = os.path.join(args.work, "base_" + base[:12])
    if not os.path.exists(os.path.join(tree, "train.py")):
        subprocess.run(git + ["worktree", "add", "--force", "--detach", tree, base], check=True, capture_output=True)
    dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    print(f"{'model':8} {'size':>9} | base steps/s | ours steps/s | ratio")
    for size in args.sizes.split(","):
        for model in args.models.split(","):
            sides = {"base": [], "ours": []}
            for _ in range(args.rounds):
                for side, root in (("base", tree), ("ours", ROOT)):
                    res = run(model, size, False, args.steps, args.batch_size, data,
                              os.path.join(args.work, side), root=root)
                    if "error" in res:
                        sys.exit(f"{side} {model} {size}: {res['error']}")
                    sides[side].append(res["steps_per_s"])
            b, o = statistics.median(sides["base"]), statistics.median(sides["ours"])
            rows.append({"model": model, "size": size, "base_steps_per_s": sides["base"],
                         "ours_steps_per_s": sides["ours"], "ratio": o / b})
            print(f"{model:8} {size:>9} | {b:12.2f} | {o:12.2f} | {o / b:.2f}x", flush=True)
    out = args.out or os.path.join(ROOT, "bench", "results", f"train_ab_{args.dataset.replace('/', '_')}.json")
    with open(out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "date": provenance()["date"], "base": base, "ours": head + (" + uncommitted changes" if dirty else ""),
                   "dataset": args.dataset, "steps": args.steps, "batch_size": args.batch_size,
                   "threads_env": os.environ.get("OMP_NUM_THREADS"),
                   "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
                   "rows": rows}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
