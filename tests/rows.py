"""Helpers for the model tests (tests/test_{ilm,mdlm,mlm,nll_unit}.py): random star-like token rows, the keys
the engine fills from meta.json, and reading a run's log and checkpoint."""
import importlib
import json
import os

import torch

STAR = dict(vocab_size=24, pad_id=0, bos_id=1, eos_id=2, mask_id=3)  # star data's ids (mask is reserved)


def star_rows(B: int, prompt_lens: list[int], target_lens: list[int], seed: int = 0):
    """Random star-like rows: prompt + target (node ids >= 4) + pad, trimmed to the longest row."""
    g = torch.Generator().manual_seed(seed)
    pl, tl = torch.tensor(prompt_lens), torch.tensor(target_lens)
    T = int((pl + tl).max())
    tokens = torch.randint(4, 24, (B, T), generator=g)
    tokens[torch.arange(T)[None, :] >= (pl + tl)[:, None]] = 0
    return tokens, pl


def meta_keys(meta: dict) -> dict:
    """The Config fields the engine fills from a rows dataset's meta.json (models/README.md)."""
    return dict(vocab_size=meta["vocab_size"], pad_id=meta.get("pad"), bos_id=meta.get("bos"), eos_id=meta.get("eos"),
                mask_id=meta.get("mask"), block_size=meta["row_width"], max_prompt_len=meta.get("max_prompt_len", 0),
                max_target_len=meta.get("max_target_len", 0))


def losses(out_dir: str) -> list[float]:
    """The training losses a run logged (log.jsonl lines with a 'loss')."""
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def checkpoint(out_dir: str) -> dict:
    return torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)


def trained_model(out_dir: str) -> torch.nn.Module:
    """The model of a run's ckpt.pt (its EMA weights when it kept one), built from the checkpoint's
    model_name and model_config alone: what the model contract promises (models/README.md)."""
    ckpt = checkpoint(out_dir)
    module = importlib.import_module(f"models.{ckpt['model_name']}")
    model = module.Model(module.Config(**ckpt["model_config"]))
    model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    return model.eval()
