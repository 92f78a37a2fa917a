"""
Is a FlexMDM checkpoint wrong because of the length it writes or because of the tokens? On prompt/target
rows (star graphs, mazes), for the first --n rows of a split:

- first guess: the total the length head expects from the prompt alone (t = 0, empty canvas: one gap, g_hat
  = sum of the missing tokens), rounded, against the true target length (length_head='distribution': the
  mode of that gap's count, the length its sampler writes);
- sampler: model.generate with the checkpoint's sampler settings: how often the length is right, and the
  sequence accuracy (and the data's own judge, valid_acc, where it has one: data/maze/score.py);
- oracle length: the true number of masks given, then one mask revealed per step, the surest first, as its
  argmax (the network reads t = the share revealed): the tokens alone, the length no longer in question.

    python bench/flexmdm_length.py out/flexmdm_maze_easy/ckpt.pt --split=test --n=500
    python bench/flexmdm_length.py <ckpt> --out=bench/results/maze/flexmdm_length.json

Prints one JSON object (and writes it with --out, the command included).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data.loader import Dataset  # noqa: E402
from engine import NanoError, data_dir, load_checkpoint, model_from_checkpoint  # noqa: E402
from eval import load_scorer, token_ids  # noqa: E402


@torch.no_grad()
def first_guess(model, prompt: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
    """(B,) the expected total of missing tokens at t = 0: x = prompt, END; g_hat read at the END slot."""
    B = prompt.size(0)
    start = prompt_lens.long()
    x = torch.full((B, int(start.max()) + 1), model.end_id, dtype=torch.long)
    keep = torch.arange(x.size(1))[None] < start[:, None]
    x[:, :prompt.size(1)] = torch.where(keep[:, :prompt.size(1)], prompt, model.end_id)
    t = torch.zeros(B)
    h = model.trunk(x, start + 1, t, start, start + model.max_len + 1)  # (B, W, C), as generate's first step
    if getattr(model, "count_head", None) is not None:  # length_head='distribution': the sampler takes the mode
        return model.count_head(h).argmax(-1).float().gather(1, start[:, None]).squeeze(1)
    g_hat = model.expected_gaps(h, t)  # (B, W)
    return g_hat.gather(1, start[:, None]).squeeze(1)


@torch.no_grad()
def oracle_length(model, prompt: torch.Tensor, prompt_lens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Canvas of the true number of masks; reveal one per step, the highest top probability first, argmax.
    -> (B, max length) tokens, -1 past each row's length."""
    B, Lmax = prompt.size(0), int(lengths.max())
    start = prompt_lens.long()
    W = int(start.max()) + Lmax + 1
    col = torch.arange(W)[None]
    x = torch.full((B, W), model.end_id, dtype=torch.long)
    x[:, :prompt.size(1)] = torch.where(col[:, :prompt.size(1)] < start[:, None], prompt, model.end_id)
    canvas = (col >= start[:, None]) & (col < (start + lengths)[:, None])  # (B, W)
    x[canvas] = model.mask_id
    for j in range(Lmax):
        is_mask = x == model.mask_id
        if not is_mask.any():
            break
        t = (j / lengths.clamp(min=1)).clamp(max=1.0).float()  # share revealed so far
        h = model.trunk(x, start + lengths + 1, t, start, start + model.max_len + 1)  # (B, W, C)
        logits = model.token_logits(h)  # (B, W, V)
        conf = logits.softmax(-1).max(-1).values.masked_fill(~is_mask, -1.0)
        best = conf.argmax(1)  # (B,) one mask per row (rows with none left pick a non-mask: skipped)
        rows = is_mask.gather(1, best[:, None]).squeeze(1).nonzero().squeeze(1)
        x[rows, best[rows]] = logits[rows, best[rows]].argmax(-1)
    out = torch.full((B, Lmax), -1, dtype=torch.long)
    for b in range(B):
        s, n = int(start[b]), int(lengths[b])
        out[b, :n] = x[b, s:s + n]
    return out


def load_flexmdm(path: str):
    """A FlexMDM checkpoint -> (checkpoint dict, model in eval mode); one line and exit for anything else."""
    try:
        ckpt = load_checkpoint(path)
    except NanoError as e:  # no file, a folder, not a checkpoint: its one line
        sys.exit(f"error: {e}")
    if ckpt["model_name"] != "flexmdm":
        sys.exit(f"error: {path} holds a {ckpt['model_name']} model; this script reads FlexMDM checkpoints")
    return ckpt, model_from_checkpoint(ckpt, path).eval()


def write_json(r: dict, out: str):
    """Print r; with out, also write it there (atomically), with the command that made it."""
    print(json.dumps(r, indent=1))
    if out:
        r["command"] = "python " + " ".join(sys.argv)
        with open(out + ".tmp", "w") as f:
            json.dump(r, f, indent=1)
        os.replace(out + ".tmp", out)
        print(f"-> {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", help="a FlexMDM checkpoint (train.py's ckpt.pt or a shipped one)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=500, help="rows, the first n of the split")
    ap.add_argument("--batch_size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    ckpt, model = load_flexmdm(args.ckpt)
    path = data_dir(ckpt["config"]["dataset"])
    data = Dataset(path, args.split, ckpt["config"]["block_size"])
    valid = load_scorer(path)
    n = min(args.n, data.n_items)
    t0 = time.time()
    guess_err, sampler_len_ok, seq_ok, oracle_ok, valid_ok, oracle_valid = [], [], [], [], [], []
    for i in range(0, n, args.batch_size):
        tokens, prompt_lens = data.get(list(range(i, min(i + args.batch_size, n))))
        prompt, truth = data.split_prompt_target(tokens, prompt_lens)
        prompt = prompt.clamp(min=0)
        lengths = (truth >= 0).sum(1)  # (B,)
        if ckpt["meta"].get("eos") is not None:  # a trailing data eos is the end, not a token (flexmdm.py)
            last = truth.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
            lengths = lengths - (last == ckpt["meta"]["eos"]).long()
        guess_err += (first_guess(model, prompt, prompt_lens).round().long() - lengths).tolist()
        g = torch.Generator().manual_seed(args.seed + i)
        pred = model.generate(prompt, prompt_lens, max_new_tokens=data.meta["max_target_len"], generator=g)
        orc = oracle_length(model, prompt, prompt_lens, lengths)
        for b in range(len(lengths)):
            want, got, o = token_ids(truth[b])[:int(lengths[b])], token_ids(pred[b]), token_ids(orc[b])
            sampler_len_ok.append(len(got) == len(want))
            seq_ok.append(got == want)
            oracle_ok.append(o == want)
            if valid is not None:
                valid_ok.append(bool(valid(token_ids(prompt[b][:int(prompt_lens[b])]), got, data.meta)))
                oracle_valid.append(bool(valid(token_ids(prompt[b][:int(prompt_lens[b])]), o, data.meta)))
    mean = lambda xs: round(sum(xs) / max(len(xs), 1), 4)  # noqa: E731
    r = {"ckpt": args.ckpt, "step": ckpt["step"], "dataset": ckpt["config"]["dataset"], "split": args.split,
         "examples": n,
         "first_guess": {"exact": mean([e == 0 for e in guess_err]), "within_1": mean([abs(e) <= 1 for e in guess_err]),
                         "mean_error": mean(guess_err), "mean_abs_error": mean([abs(e) for e in guess_err])},
         "sampler": {"length_right": mean(sampler_len_ok), "seq_acc": mean(seq_ok),
                     **({"valid_acc": mean(valid_ok)} if valid is not None else {}),
                     "settings": {k: ckpt["model_config"].get(k) for k in ("steps", "unmask", "score", "insert",
                                                                           "reveal_after", "length_head")}},
         "oracle_length": {"seq_acc": mean(oracle_ok), **({"valid_acc": mean(oracle_valid)} if valid else {})},
         "seconds": round(time.time() - t0, 1)}
    write_json(r, args.out)


if __name__ == "__main__":
    main()
