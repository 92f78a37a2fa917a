"""
Training throughput of every model through the real loop (train.py), against this machine's matmul peak
measured in the same run.

    python bench/train_throughput.py                                  # all models, 128/2/2 and 256/4/4
    python bench/train_throughput.py --models=arlm,ilm --sizes=768/12/12 --steps=6 --compile=both

Each (model, size, compile) runs `train.py` in its own process on star_easy (prepare it first), so peak
memory is per run. Steady-state numbers leave out the first log intervals (compilation, warm-up). FLOP/s
is estimated as 6 x parameters x tokens + the attention term 12 x n_layer x n_embd x T per token, on real
(non-pad) tokens; the fraction is against the fp32 matmul peak (a large torch.mm) measured just before.
Writes bench/results/train_throughput.json.
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
from engine import git_commit  # noqa: E402


def provenance() -> dict:
    """What a results file must say besides its command and machine: the code it measured and when (a table
    made from an older file then says so)."""
    return {"code": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def run(model: str, size: str, compile_: bool, steps: int, batch: int, dataset: str, work: str,
        dtype: str = "float32", root: str = ROOT) -> dict:
    d, l, h = (int(x) for x in size.split("/"))
    out = os.path.join(work, f"{model}_{d}_{l}_{h}_{int(compile_)}_{dtype}")  # scratch: replaced each round
    log_every = max(1, steps // 6)
    cmd = [sys.executable, os.path.join(root, "train.py"), f"--model={model}", f"--dataset={dataset}",
           f"--out_dir={out}", f"--n_embd={d}", f"--n_layer={l}", f"--n_head={h}", f"--batch_size={batch}",
           f"--max_iters={steps}", f"--log_interval={log_every}", f"--eval_interval={10 ** 9}",
           "--eval_examples=64", "--eval_gen_examples=0", "--eval_batch_size=64", f"--compile={compile_}",
           "--warmup_iters=1", f"--dtype={dtype}", "--overwrite=True"]
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode:
        return {"model": model, "size": size, "compile": compile_, "error": r.stderr.strip().splitlines()[-1]}
    rss_kb = int([ln for ln in r.stderr.splitlines() if ln.startswith("MAXRSS_KB")][-1].split()[1])
    rows = [json.loads(x) for x in open(os.path.join(out, "log.jsonl"))]
    head = rows[0]
    logs = [x for x in rows if "tok_s" in x]
    steady = logs[2:] or logs[-1:]  # leave out compilation and warm-up
    tok_s = statistics.median(x["tok_s"] for x in steady)
    steps_s = statistics.median(x["steps_s"] for x in steady)
    n_params = head["n_params"]
    T = head["config"]["block_size"]
    flop_per_token = 6 * n_params + 12 * l * d * T
    done = [x for x in rows if "done" in x][-1]
    return {"model": model, "size": size, "compile": compile_, "dtype": dtype, "params_M": n_params / 1e6,
            "tokens_per_s": tok_s,
            "steps_per_s": steps_s, "first_step_s": done["first_step_s"], "wall_s": wall,
            "peak_rss_MB": rss_kb / 1024, "flop_per_s": tok_s * flop_per_token}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "models"))
                                                         if f.endswith(".py") and not f.startswith("_"))))
    ap.add_argument("--sizes", default="128/2/2,256/4/4")
    ap.add_argument("--compile", default="no", choices=["no", "yes", "both"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--dataset", default="star/easy")
    ap.add_argument("--work", default="/tmp/nanoxlm_bench")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "train_throughput.json"))
    args = ap.parse_args()
    peak = matmul_peak()
    results = []
    compiles = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    print(f"fp32 matmul peak (2048^3 torch.mm): {peak / 1e9:.1f} GFLOP/s, {torch.get_num_threads()} threads")
    print(f"{'model':6} {'size':>9} {'compile':>7} {'params':>7} {'steps/s':>8} {'tok/s':>9} {'peak%':>6} "
          f"{'1st step':>8} {'RSS MB':>7}")
    for size in args.sizes.split(","):
        for model in args.models.split(","):
            for c in compiles:
                r = run(model, size, c, args.steps, args.batch_size, args.dataset, args.work)
                results.append(r)
                if "error" in r:
                    print(f"{model:6} {size:>9} {str(c):>7} error: {r['error']}")
                    continue
                print(f"{model:6} {size:>9} {str(c):>7} {r['params_M']:6.2f}M {r['steps_per_s']:8.2f} "
                      f"{r['tokens_per_s']:9,.0f} {100 * r['flop_per_s'] / peak:5.1f}% {r['first_step_s']:7.1f}s "
                      f"{r['peak_rss_MB']:7.0f}", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), **provenance(), "machine": {"platform": platform.platform(),
                   "processor": platform.processor(), "cpus": os.cpu_count(), "threads": torch.get_num_threads()},
                   "versions": {"torch": torch.__version__, "python": platform.python_version()},
                   "matmul_peak_flop_per_s": peak, "results": results}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
