"""
Where a FlexMDM checkpoint's bound goes: the paper's bound (the loss: token CE + insertion Bregman term, each
target token's alignment known) against the aligned bound the engine reports as its NLL (the same terms
averaged over the alignments x_t allows; models/flexmdm.py), over the first --n rows of a split:

- at the checkpoint's own time sampling (the estimate eval.py reports), and
- the integrand at fixed times t (both rates 1/(1 - t), no 1/q(t)): where in t the slack is paid.

Nats per NLL unit (models/README.md), fixed noise (seeded per batch).

    python bench/flexmdm_bound.py models/pretrained/flexmdm_star_easy.pt --n=256 --split=val
    python bench/flexmdm_bound.py out/flexmdm_shakespeare_char_seed1337/ckpt.pt --out=bench/results/x.json
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.flexmdm_length import load_flexmdm, write_json  # noqa: E402
from data.loader import Dataset  # noqa: E402
from engine import data_dir  # noqa: E402

TIMES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.97)


@torch.no_grad()
def bound_terms(model, data: Dataset, n: int, batch_size: int, t_fixed=None) -> dict:
    """Mean per unit of the loss's two terms, their sum (the paper's bound) and the aligned bound."""
    sums = {"unmask": 0.0, "insert": 0.0, "paper_bound": 0.0, "aligned_bound": 0.0}
    units = 0.0
    for i in range(0, n, batch_size):
        tokens, prompt_lens = data.get(np.arange(i, min(i + batch_size, n)))
        t = None if t_fixed is None else torch.full((tokens.size(0),), t_fixed)
        batch = model.collate(tokens, prompt_lens, generator=torch.Generator().manual_seed(i), t=t)
        if t_fixed is not None:
            batch["weight"] = 1 / (1 - batch["t"])  # the integrand at t: both rates 1/(1 - t), no 1/q(t)
        _, m = model(batch)
        u = float(m["nll_tokens"])
        for k, v in (("unmask", m["unmask_loss"]), ("insert", m["insert_loss"]),
                     ("paper_bound", m["unmask_loss"] + m["insert_loss"]), ("aligned_bound", m["nll"])):
            sums[k] += float(v) * u
        units += u
    return {k: round(v / units, 4) for k, v in sums.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", help="a FlexMDM checkpoint (train.py's ckpt.pt or a shipped one)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=512, help="rows, the first n of the split")
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    ckpt, model = load_flexmdm(args.ckpt)
    data = Dataset(data_dir(ckpt["config"]["dataset"]), args.split, ckpt["config"]["block_size"])
    n = min(args.n, data.n_items)
    t0 = time.time()
    r = {"ckpt": args.ckpt, "step": ckpt["step"], "dataset": ckpt["config"]["dataset"], "split": args.split,
         "examples": n, "unit": "nats per NLL unit (target tokens + 1)",
         "sampled_t": bound_terms(model, data, n, args.batch_size),
         "integrand_at_t": {str(t): bound_terms(model, data, n, args.batch_size, t) for t in TIMES},
         "seconds": None}
    r["seconds"] = round(time.time() - t0, 1)
    write_json(r, args.out)


if __name__ == "__main__":
    main()
