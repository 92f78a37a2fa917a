"""
A lever, measured: train one config with some overrides and add the run to a probes JSON (the overrides, the
validation curve with wall time, the time to a target, the machine's load). The speedrun's probes
(bench/results/speedrun_probes.json) were made with it, two runs at a time, one thread each:

    OMP_NUM_THREADS=1 python bench/probe.py configs/ilm_star_easy.py muon_lr3e-3 --optimizer=muon \
        --out=bench/results/speedrun_probes.json --runs=/root/runs/probes
    python bench/probe.py configs/ilm_star_easy.py base --max_iters=3000 --eval_interval=250 --target=0.99

Runs go to --runs/<name> (outside the repository, by default ~/runs/probes); a name already in the JSON is
refused, so a probe is never replaced without moving it aside by hand.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import NanoError  # noqa: E402
from engine import git_commit, run_main  # noqa: E402
from star_row import machine  # noqa: E402


def curve_of(log_path: str) -> tuple[list[dict], float | None]:
    curve, wall = [], None
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            if "val_loss" in r:
                curve.append({k: r[k] for k in ("step", "t", "val_loss", "val_seq_acc", "val_tok_acc") if k in r})
            wall = r.get("wall_s", wall)
    return curve, wall


def main(argv: list[str]):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("name", help="the probe's name in the JSON")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/speedrun_probes.json"))
    ap.add_argument("--runs", default=os.path.expanduser("~/runs/probes"))
    ap.add_argument("--target", type=float, default=0.99, help="val_seq_acc whose first time is reported")
    ap.add_argument("--note", default="")
    ap.add_argument("--no_train", action="store_true", help="record the run already in --runs/<name> (one stopped "
                    "by hand: its curve up to the stop), without training")
    args, overrides = ap.parse_known_args(argv)
    probes = json.load(open(args.out)) if os.path.exists(args.out) else {"probes": []}
    if any(p["name"] == args.name for p in probes["probes"]):
        raise NanoError(f"{args.out} already has a probe named {args.name!r}; choose another name")
    out_dir = os.path.join(args.runs, args.name)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), args.config, f"--out_dir={out_dir}", *overrides]
    t0 = time.time()
    rc = 0 if args.no_train else subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    if rc != 0:
        raise NanoError(f"probe {args.name}: train.py exited {rc} (command: {' '.join(cmd)})")
    curve, wall = curve_of(os.path.join(out_dir, "log.jsonl"))
    hit = next((p for p in curve if p.get("val_seq_acc", 0) >= args.target), None)
    probes = json.load(open(args.out)) if os.path.exists(args.out) else {"probes": []}  # again: a probe beside
    probes["probes"].append({                                                          # this one may have written
        "name": args.name, "config": os.path.relpath(args.config, ROOT), "overrides": overrides, "note": args.note,
        "command": " ".join(["python bench/probe.py", os.path.relpath(args.config, ROOT), args.name, *overrides]),
        "date": datetime.date.today().isoformat(), "git": git_commit(), "machine": machine(),
        "wall_s": round(wall or time.time() - t0, 1), "target": args.target,
        "first_at_target": {"step": hit["step"], "t": round(hit["t"], 1)} if hit else None,
        "final": curve[-1] if curve else None, "curve": curve})
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(probes, f, indent=1)
    os.replace(tmp, args.out)
    print(f"{args.name}: {'reached ' + str(args.target) + ' at step ' + str(hit['step']) + ', ' + str(round(hit['t'])) + ' s' if hit else 'target not reached'}"
          f"; final {curve[-1] if curve else None}")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
