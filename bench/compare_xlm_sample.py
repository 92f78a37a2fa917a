"""
ILM sampling throughput: our batched insertion sampler against the XLM package's own ILM predictor
(ilm.predictor_ilm, run on CPU by bench/xlm/xlm_predict_bench.py), same model size, same star_easy test
prompts, same amount of work, alternating the two in one run.

    OMP_NUM_THREADS=1 python bench/compare_xlm_sample.py
    OMP_NUM_THREADS=1 python bench/compare_xlm_sample.py --sizes=128/2/2,768/12/12 --batches=64

Same work: both models are freshly initialised (XLM has no trained star checkpoint we could load into both)
and both stop heads are switched off (threshold 2.0), so every example gets exactly `--insertions` insertions
(XLM's star_easy predictor default max_steps = block_size = 14). A trained model stops earlier, and our
sampler then drops finished rows from the batch, which XLM's does not; that saving is not counted here.
Needs bench/.xlm-venv and its data (bench/compare_xlm.py makes both). Writes bench/results/compare_xlm_sample.json.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from compare_xlm import ensure_venv  # noqa: E402
from train_throughput import provenance  # noqa: E402
from data.loader import Dataset  # noqa: E402
from engine import build_model, data_keys, model_defaults  # noqa: E402


def ours(size: str, batch: int, examples: int, insertions: int, data: Dataset) -> dict:
    d, l, h = (int(x) for x in size.split("/"))
    config = {**model_defaults({"model": "ilm"}), **data_keys(data.meta, {"block_size": 0}),
              "n_embd": d, "n_layer": l, "n_head": h, "stop_threshold": 2.0}
    torch.manual_seed(0)
    model = build_model("ilm", config).eval()
    tokens, plens = data.get(range(examples + batch))
    prompt, _ = data.split_prompt_target(tokens, plens)
    prompt = prompt.clamp(min=0)
    model.generate(prompt[:batch], plens[:batch], insertions)  # warm-up batch, as XLM's first is
    t0, made = time.perf_counter(), 0
    for i in range(batch, batch + examples, batch):
        out = model.generate(prompt[i:i + batch], plens[i:i + batch], insertions)
        made += int((out >= 0).sum())
    dt = time.perf_counter() - t0
    return {"examples_per_s": examples / dt, "tokens_per_s": made / dt, "mean_gen_tokens": made / examples,
            "params": sum(p.numel() for p in model.parameters())}


def theirs(size: str, batch: int, examples: int, insertions: int) -> dict:
    d, l, h = size.split("/")
    r = subprocess.run([os.path.join(ROOT, "bench", "xlm", "run_xlm_predict.sh"), "-m", "ilm", "-d", d, "-l", l,
                        "-H", h, "-b", str(batch), "-e", str(examples), "--", "+predictor.stopping_threshold=2.0",
                        f"predictor.max_steps={insertions}"], capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("XLM_PRED_RESULT")]
    if r.returncode or not line or "status=failed" in line[-1]:
        return {"error": ((r.stderr or r.stdout).strip().splitlines() or ["no output"])[-1]}
    f = dict(kv.split("=", 1) for kv in line[-1].split()[1:] if "=" in kv)
    return {"examples_per_s": float(f["examples_per_s"]), "tokens_per_s": float(f["gen_tokens_per_s"]),
            "mean_gen_tokens": float(f["mean_gen_tokens"]), "params": int(f["params"]), "raw": line[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128/2/2,256/4/4")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--insertions", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "compare_xlm_sample.json"))
    args = ap.parse_args()
    ensure_venv()
    if not os.path.exists(os.path.join(ROOT, "bench", ".work", "xlm_run", "data")):
        sys.exit("XLM's star data is missing: run bench/compare_xlm.py once (it prepares it), or bench/xlm/RECIPE.md step 2")
    data = Dataset(os.path.join(ROOT, "data", "star", "easy"), "test")
    rows = []
    print(f"{'size':>9} {'batch':>5} | {'ours ex/s':>9} {'XLM ex/s':>9} {'ratio':>7} | {'ours tok/ex':>11} {'XLM tok/ex':>10}")
    for size in args.sizes.split(","):
        for B in map(int, args.batches.split(",")):
            n = 256 if B > 1 else 32
            o, t = [], []
            for _ in range(args.rounds):  # alternate, so a busy moment hits both
                o.append(ours(size, B, n, args.insertions, data))
                t.append(theirs(size, B, n, args.insertions))
            ok_t = [x for x in t if "error" not in x]
            row = {"size": size, "batch": B, "examples": n, "ours": o, "theirs": t}
            if ok_t:
                med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
                row["examples_per_s_ratio"] = med(o, "examples_per_s") / med(ok_t, "examples_per_s")
                print(f"{size:>9} {B:5d} | {med(o, 'examples_per_s'):9.1f} {med(ok_t, 'examples_per_s'):9.1f} "
                      f"{row['examples_per_s_ratio']:6.1f}x | {med(o, 'mean_gen_tokens'):11.1f} "
                      f"{med(ok_t, 'mean_gen_tokens'):10.1f}", flush=True)
            else:
                print(f"{size:>9} {B:5d} | XLM failed: {t[-1]['error']}", flush=True)
            rows.append(row)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), **provenance(), "threads": torch.get_num_threads(),
                   "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                   "versions": {"torch": torch.__version__}, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
