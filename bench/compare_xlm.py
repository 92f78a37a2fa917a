"""
nanoXLM against the XLM package (xlm-core / xlm-models 0.3.1) on the same work: star_easy, batch 64, the
same model sizes, the same number of steps, CPU. Runs alternate (ours, theirs, ours, theirs, ...) so that
load on the machine hits both alike; the table shows medians and the ratio of our real-token throughput
and startup time to theirs.

    python bench/compare_xlm.py                              # ilm,arlm,mlm at 128/2/2 and 256/4/4, 2 rounds
    python bench/compare_xlm.py --models=ilm --sizes=128/2/2 --rounds=3 --steps=60

The XLM package lives in its own virtual environment, bench/.xlm-venv, made here when missing (torch pinned
to the same CPU build; transformers<5, which it needs to import). Its star data are made locally with its own
generator, since the Hugging Face hub is out of reach (bench/xlm/RECIPE.md has the details).
Writes bench/results/compare_xlm.json.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import ROOT, provenance, run as run_ours  # noqa: E402

VENV = os.path.join(ROOT, "bench", ".xlm-venv")


def ensure_venv():
    if os.path.exists(os.path.join(VENV, "bin", "xlm")):
        return
    print(f"making {VENV} (about 2 minutes)", flush=True)
    pip = [os.path.join(VENV, "bin", "python"), "-m", "pip", "install", "-q"]
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run(pip + ["torch==2.13.0"], check=True)  # the CPU build, as ours
    subprocess.run(pip + ["-c", os.path.join(ROOT, "bench", "xlm", "constraints.txt"), "xlm-core==0.3.1",
                          "xlm-models==0.3.1", "transformers<5"], check=True)


# bf16 on both sides: our autocast (train.py --dtype=bfloat16) and Lightning's bf16-mixed, which XLM's config
# leaves unset (fp32) but takes as a Hydra override
THEIR_PRECISION = {"float32": [], "bfloat16": ["+trainer.precision=bf16-mixed"]}


def run_theirs(model: str, size: str, steps: int, batch: int, dtype: str = "float32") -> dict:
    d, l, h = size.split("/")
    r = subprocess.run([os.path.join(ROOT, "bench", "xlm", "run_xlm_train.sh"), "-m", model, "-n", str(steps),
                        "-d", d, "-l", l, "-H", h, "-b", str(batch), "--", *THEIR_PRECISION[dtype]],
                       capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("XLM_RESULT")]
    if r.returncode or not line:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    fields = dict(kv.split("=", 1) for kv in line[-1].split()[1:])
    return {"tokens_per_s": float(fields["tokens_per_s"]), "steps_per_s": float(fields["steps_per_s"]),
            # like ours (start of the process to the end of the first step): its startup + its first step
            "first_step_s": float(fields["startup_s"]) + float(fields["first_step_s"]), "raw": line[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="ilm,arlm,mlm")
    ap.add_argument("--sizes", default="128/2/2,256/4/4")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=sorted(THEIR_PRECISION),
                    help="both sides: float32, or bf16 autocast (ours) and bf16-mixed (Lightning's)")
    ap.add_argument("--work", default="/tmp/nanoxlm_compare")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "compare_xlm.json"))
    args = ap.parse_args()
    ensure_venv()
    rows = []
    # steps/s is the like-for-like ratio (the same 64 examples a step); tokens are counted by each side its own
    # way (ours: real tokens of rows trimmed to the batch's longest; XLM: its collator's attention mask)
    print(f"{'model':5} {'size':>8} | {'ours tok/s':>10} {'XLM tok/s':>10} {'ratio':>6} | {'ours 1st':>8} "
          f"{'XLM 1st':>8} | {'ours steps/s':>12} {'XLM steps/s':>11} {'ratio':>6}")
    for size in args.sizes.split(","):
        for model in args.models.split(","):
            ours, theirs = [], []
            for _ in range(args.rounds):  # alternate, so a busy moment hits both
                load = os.getloadavg()[0]  # the 1-minute load before each run: > 0.5 or so, another job ran
                ours.append({**run_ours(model, size, False, args.steps, args.batch_size, "star/easy", args.work,
                                        args.dtype), "load_before": load})
                load = os.getloadavg()[0]
                theirs.append({**run_theirs(model, size, args.steps, args.batch_size, args.dtype),
                               "load_before": load})
            ok_o = [r for r in ours if "error" not in r]
            ok_t = [r for r in theirs if "error" not in r]
            if not ok_o or not ok_t:
                print(f"{model:5} {size:>8} | error: ours {[r.get('error') for r in ours]} "
                      f"theirs {[r.get('error') for r in theirs]}")
                rows.append({"model": model, "size": size, "ours": ours, "theirs": theirs})
                continue
            med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
            row = {"model": model, "size": size, "dtype": args.dtype, "ours": ours, "theirs": theirs,
                   "tokens_per_s_ratio": med(ok_o, "tokens_per_s") / med(ok_t, "tokens_per_s"),
                   "steps_per_s_ratio": med(ok_o, "steps_per_s") / med(ok_t, "steps_per_s"),
                   "startup_ratio": med(ok_t, "first_step_s") / med(ok_o, "first_step_s")}
            rows.append(row)
            print(f"{model:5} {size:>8} | {med(ok_o, 'tokens_per_s'):10,.0f} {med(ok_t, 'tokens_per_s'):10,.0f} "
                  f"{row['tokens_per_s_ratio']:5.2f}x | {med(ok_o, 'first_step_s'):7.1f}s {med(ok_t, 'first_step_s'):7.1f}s"
                  f" | {med(ok_o, 'steps_per_s'):12.2f} {med(ok_t, 'steps_per_s'):11.2f} "
                  f"{row['steps_per_s_ratio']:5.2f}x", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), **provenance(), "threads_env": os.environ.get("OMP_NUM_THREADS"),
                   "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
