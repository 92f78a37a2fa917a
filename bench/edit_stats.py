"""
What edits an Edit Flows sampler makes (issue: the share of insertions, deletions and substitutions over a
sampling run): generate for the first test prompts of a checkpoint's data (or unconditionally), then count
the edits per row (models/editflow.py's edit_counts), split into edits of masks and edits of real tokens
(which undo what was written), next to the output lengths and, with prompts, the sequence accuracy.

    python bench/edit_stats.py --ckpt=out/editflow_star_easy_seed1337/ckpt.pt
    python bench/edit_stats.py --ckpt=... --max_examples=500 --steps=64       # any sampler setting of the model
    python bench/edit_stats.py --ckpt=... --unconditional=True --max_examples=64

Writes bench/results/edit_stats_<run>.json (--out to change) with the command, wall time and machine.
"""
import json
import os
import platform
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import Dataset, NanoError  # noqa: E402
from engine import accuracy, data_dir, inference_setup, print_help, run_main, wants_help  # noqa: E402

DEFAULTS = dict(
    ckpt="",  # an Edit Flows checkpoint (models/editflow.py)
    split="test",  # where the prompts come from
    max_examples=1000,
    batch_size=250,
    unconditional=False,  # generate from nothing, block_size tokens at most
    out="",  # '' = bench/results/edit_stats_<run folder>.json
    use_ema=True,
    device="auto",
    seed=1337,
)


def main(argv: list[str]):
    if wants_help(argv):
        return print_help(__file__, __doc__, DEFAULTS)
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    if ckpt["model_name"] != "editflow":
        raise NanoError(f"{config['ckpt']} holds a model of models/{ckpt['model_name']}.py; edit statistics need an Edit "
                        f"Flows checkpoint (models/editflow.py)")
    mc = ckpt["model_config"]
    data = Dataset(data_dir(ckpt["config"]["dataset"]), config["split"], ckpt["config"]["block_size"])
    n = min(config["max_examples"], data.n_items)
    g = torch.Generator(device=device).manual_seed(config["seed"])
    sums, lengths, right, t0 = {}, [], 0, time.time()
    for start in range(0, n, config["batch_size"]):
        idx = list(range(start, min(n, start + config["batch_size"])))
        if config["unconditional"]:
            prompt, prompt_lens = torch.zeros(len(idx), 0, dtype=torch.long), torch.zeros(len(idx), dtype=torch.long)
            truth, max_new = None, mc["block_size"]
        else:
            tokens, prompt_lens = data.get(idx)
            prompt, truth = data.split_prompt_target(tokens, prompt_lens)
            prompt, max_new = prompt.clamp(min=0), mc["max_target_len"] or mc["block_size"]
        with torch.no_grad():
            out = model.generate(prompt.to(device), prompt_lens.to(device), max_new_tokens=max_new, generator=g).cpu()
        for k, v in model.edit_counts.items():
            sums[k] = sums.get(k, 0) + int(v.sum())
        lengths += (out >= 0).sum(1).tolist()
        if truth is not None:
            right += int(accuracy(out, truth)[0].sum())
    seconds = time.time() - t0
    total = sums["ins"] + sums["del"] + sums["sub"]
    stats = {"rows": n, "edits_per_row": total / n,
             "share": {k: sums[k] / max(total, 1) for k in ("ins", "del", "sub")},
             "per_row": {k: v / n for k, v in sums.items()},
             "undo_per_row": {"del": (sums["del"] - sums["del_mask"]) / n, "sub": (sums["sub"] - sums["sub_mask"]) / n},
             "mean_output_len": sum(lengths) / n, "seq_acc": right / n if not config["unconditional"] else None}
    run = os.path.basename(os.path.dirname(os.path.abspath(config["ckpt"])))
    path = config["out"] or os.path.join(ROOT, "bench", "results", f"edit_stats_{run}.json")
    record = {"command": "python bench/edit_stats.py " + " ".join(argv), "ckpt": config["ckpt"],
              "step": ckpt["step"], "sampler": {k: mc[k] for k in ("steps", "x0", "n_masks", "mask_order") if k in mc},
              "split": config["split"], "unconditional": config["unconditional"], "seconds": round(seconds, 1),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "threads": torch.get_num_threads()}, "date": time.strftime("%Y-%m-%d"), **stats}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    sh = stats["share"]
    print(f"{n} rows: {stats['edits_per_row']:.2f} edits a row: insertions {sh['ins']:.1%}, deletions {sh['del']:.1%}, "
          f"substitutions {sh['sub']:.1%}; undoing a written token: {stats['undo_per_row']['del']:.3f} deletions and "
          f"{stats['undo_per_row']['sub']:.3f} substitutions a row; mean length {stats['mean_output_len']:.2f}"
          + (f"; sequence accuracy {stats['seq_acc']:.1%}" if stats["seq_acc"] is not None else "") + f" -> {path}")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
