"""
Evaluate a checkpoint on a whole split: loss (NLL per token, or the model's bound on it) and, for
prompt/target data, sequence and token accuracy of generation. Writes results.json and predictions.jsonl.

    python eval.py --ckpt=out/arlm_star_easy/ckpt.pt --split=test
    python eval.py --ckpt=... --max_examples=500 --batch_size=250 --temperature=0.0
"""
import json
import os
import sys
import time

import torch

from data.loader import Dataset, NanoError, decode
from train import evaluate, inference_setup

DEFAULTS = dict(
    ckpt="",  # path to a checkpoint written by train.py
    split="test",
    max_examples=0,  # 0 = the whole split
    batch_size=500,
    out_dir="",  # where results go; '' = next to the checkpoint
    use_ema=True,
    device="auto",
    seed=1337,
)


def main(argv: list[str]) -> dict:
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", ckpt["config"]["dataset"])
    data = Dataset(data_dir, config["split"], ckpt["config"]["block_size"])
    n = config["max_examples"] or data.n_items
    t0 = time.time()
    preds = []
    r = evaluate(model, data, n, n, config["batch_size"], device, seed=config["seed"], progress=True,
                 predictions=preds)
    seconds = time.time() - t0
    results = {"ckpt": config["ckpt"], "model": ckpt["model_name"], "step": ckpt["step"], "split": config["split"],
               "examples": min(n, data.n_items), **r, "seconds": seconds, "model_config": ckpt["model_config"]}
    out_dir = config["out_dir"] or os.path.dirname(os.path.abspath(config["ckpt"]))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    if preds:
        meta = ckpt["meta"]
        with open(os.path.join(out_dir, "predictions.jsonl"), "w") as f:
            for prompt, pred, truth, ok in preds:
                f.write(json.dumps({"prompt": decode(prompt, meta), "text": decode(pred, meta),
                                    "truth": decode(truth, meta), "correct": ok}) + "\n")
    print(" ".join(f"{k} {v:.4f}" for k, v in r.items()) + f" | {results['examples']} examples in {seconds:.1f}s"
          f" | {os.path.join(out_dir, 'results.json')}")
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except NanoError as e:
        sys.exit(f"error: {e}")
