"""
Where one training step of ours spends its time: torch.profiler over a few steps of a model on star_easy (the
collator, forward, backward and AdamW of train.py's loop, without its logging), grouped by operator, plus the
share of the step outside torch operators (Python, the collator's numpy). For the comparison with the XLM
package (bench/compare_xlm.py), at its size and batch:

    OMP_NUM_THREADS=1 python bench/diag/profile_step.py --model=ilm --size=128/2/2 --batch=64
    OMP_NUM_THREADS=1 python bench/diag/profile_step.py --model=flexmdm --size=256/4/4 --theirs   # XLM's step

Writes bench/results/profile_step_<model>_<size>.json (--theirs: profile_step_xlm_<model>_<size>.json: the XLM
package's training step under Lightning, profiled the same way by bench/xlm/xlm_bench_callback.py).
"""
import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
import engine  # noqa: E402
from data.loader import Dataset, load_meta  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ilm")
    ap.add_argument("--size", default="128/2/2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--theirs", action="store_true", help="profile the XLM package's step (bench/.xlm-venv)")
    args = ap.parse_args()
    if args.theirs:
        return profile_theirs(args)
    d, l, h = (int(x) for x in args.size.split("/"))
    folder = engine.data_dir("star/easy")
    meta = load_meta(folder)
    data = Dataset(folder, "train")
    cfg = {**engine.model_defaults({"model": args.model}), **engine.data_keys(meta, {"block_size": 256}),
           "n_embd": d, "n_layer": l, "n_head": h}
    model = engine.build_model(args.model, cfg)
    C = argparse.Namespace(optimizer="adamw", learning_rate=1e-3, weight_decay=0.1, beta1=0.9, beta2=0.99)
    opt = engine.make_optimizer(model, C, fused=False)
    g = torch.Generator().manual_seed(0)

    def step(i: int):
        tokens, prompt_lens = data.get(torch.randint(data.n_items, (args.batch,), generator=g).numpy())
        loss, _ = engine.noised_loss(model, model, tokens, prompt_lens, i, engine.nullcontext())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(5):  # warm-up
        step(i)
    t = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            step(100 + i)
    wall = (time.perf_counter() - t) / args.steps
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6 / args.steps
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    rows = [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / args.steps, 3),
             "calls_per_step": e.count // args.steps} for e in top]
    out = {"command": "python bench/diag/profile_step.py " + " ".join(sys.argv[1:]), "model": args.model,
           "size": args.size, "batch": args.batch, "threads": torch.get_num_threads(), "git": engine.git_commit(),
           "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0],
           "step_ms_profiled": round(1e3 * wall, 2), "torch_ops_ms": round(1e3 * total_self, 2),
           "ops_per_step": sum(e.count for e in events) // args.steps, "top_ops": rows}
    path = os.path.join(ROOT, "bench", "results", f"profile_step_{args.model}_{args.size.replace('/', '_')}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "top_ops"}, indent=1))
    for r in rows:
        print(f"{r['self_ms_per_step']:8.2f} ms  x{r['calls_per_step']:4d}  {r['op']}")
    print(f"-> {path}")


def profile_theirs(args):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from compare_xlm import ensure_venv, run_theirs
    ensure_venv()
    name = f"profile_step_xlm_{args.model}_{args.size.replace('/', '_')}.json"
    path = os.path.join(ROOT, "bench", "results", name)
    os.environ["XLM_BENCH_TORCH_PROFILE"] = path + ".tmp"
    load = os.getloadavg()[0]
    r = run_theirs(args.model, args.size, steps=args.steps + 5, batch=args.batch)  # 5 warm-up steps
    if "error" in r:
        sys.exit(f"error: the XLM run failed: {r['error']}")
    with open(path + ".tmp") as f:
        prof = json.load(f)
    os.remove(path + ".tmp")
    out = {"command": "python bench/diag/profile_step.py " + " ".join(sys.argv[1:]), "side": "XLM package 0.3.1",
           "model": args.model, "size": args.size, "batch": args.batch, "threads": torch.get_num_threads(),
           "git": engine.git_commit(), "date": time.strftime("%Y-%m-%d"), "load_before": load, **prof,
           "xlm_result": r["raw"]}
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "top_ops"}, indent=1))
    for row in out["top_ops"]:
        print(f"{row['self_ms_per_step']:8.2f} ms  x{row['calls_per_step']:4d}  {row['op']}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
