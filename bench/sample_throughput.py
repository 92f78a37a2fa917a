"""
Sampling throughput of every model's sampler on star_easy test prompts, at batch 1 and 64, over the
settings that change its cost (ARLM with/without KV cache, MDLM steps with/without its cache, ...).

    python bench/sample_throughput.py                          # trained checkpoints out/<model>_star_easy/ckpt.pt
    python bench/sample_throughput.py --models=mdlm --batches=64 --examples=256

Uses a trained star_easy checkpoint when there is one (models/pretrained/, else the seed-1337 row's run in
out/, else out/<model>_star_easy): a sampler's cost depends on what it predicts (when ILM stops, how often
MDLM's cache hits). Else a freshly initialised model with the model file's defaults, marked 'init'. Writes
bench/results/sample_throughput.json.
"""
import argparse
import json
import os
import platform
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from data.loader import Dataset  # noqa: E402
from train_throughput import provenance  # noqa: E402
from engine import (accuracy, build_model, data_keys, load_checkpoint, model_from_checkpoint,  # noqa: E402
                    model_defaults)

SETTINGS = {  # model -> list of Config overrides to time
    "arlm": [{"kv_cache": True}, {"kv_cache": False}],
    "mdlm": [{"steps": s, "cache": c} for s in (8, 32, 128) for c in (True, False)],
    "mlm": [{}],
    "ilm": [{}],
    # BD3-LM over the 9-position star canvas in blocks of 4: 4 steps a block is about one network call per
    # token, as ARLM and MDLM at 8 steps; 16 a block, as MDLM at 32
    "bd3lm": [{"steps_per_block": s, "kv_cache": c} for s in (4, 16) for c in (True, False)],
}


def load(model_name: str, data: Dataset):
    for path in (os.path.join(ROOT, "models", "pretrained", f"{model_name}_star_easy.pt"),  # shipped
                 os.path.join(ROOT, "out", f"{model_name}_star_easy_seed1337", "ckpt.pt"),  # a results-table row
                 os.path.join(ROOT, "out", f"{model_name}_star_easy", "ckpt.pt")):  # the config's own run
        if os.path.exists(path):
            return model_from_checkpoint(load_checkpoint(path), path).eval(), "trained"
    config = {**model_defaults({"model": model_name}), **data_keys(data.meta, {"block_size": 0})}
    torch.manual_seed(0)
    return build_model(model_name, config).eval(), "init"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="arlm,mlm,mdlm,ilm")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--examples", type=int, default=128, help="prompts per measurement")
    ap.add_argument("--dataset", default="star/easy")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "sample_throughput.json"))
    args = ap.parse_args()
    data = Dataset(os.path.join(ROOT, "data", args.dataset), "test")
    max_new = data.meta["max_target_len"]
    results = []
    print(f"{'model':5} {'weights':7} {'settings':26} {'batch':>5} {'examples/s':>10} {'tokens/s':>9} {'seq_acc':>7}")
    for name in args.models.split(","):
        model, weights = load(name, data)
        for setting in SETTINGS.get(name, [{}]):
            for k, v in setting.items():
                setattr(model.config, k, v)
            for B in map(int, args.batches.split(",")):
                n = max(B, args.examples // B * B) if B > 1 else min(args.examples, 32)
                tokens, plens = data.get(range(n))
                prompt, truth = data.split_prompt_target(tokens, plens)
                g = torch.Generator().manual_seed(0)
                model.generate(prompt[:B].clamp(min=0), plens[:B], max_new, generator=g)  # warm-up
                t0, made, right = time.perf_counter(), 0, 0
                for i in range(0, n, B):
                    out = model.generate(prompt[i:i + B].clamp(min=0), plens[i:i + B], max_new, generator=g)
                    made += int((out >= 0).sum())
                    right += int(accuracy(out, truth[i:i + B])[0].sum())
                dt = time.perf_counter() - t0
                r = {"model": name, "weights": weights, "settings": setting, "batch": B, "examples": n,
                     "examples_per_s": n / dt, "tokens_per_s": made / dt, "seq_acc": right / n}
                results.append(r)
                print(f"{name:5} {weights:7} {json.dumps(setting):26} {B:5d} {r['examples_per_s']:10.1f} "
                      f"{r['tokens_per_s']:9.0f} {r['seq_acc']:7.3f}", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), **provenance(), "threads": torch.get_num_threads(),
                   "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                   "versions": {"torch": torch.__version__}, "results": results}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
