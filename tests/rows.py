"""Helpers for the model tests (tests/test_{ilm,mdlm,mlm,nll_unit}.py): random star-like token rows, reading a
run's log and checkpoint, and the exact-resume check every model must pass through train.main."""
import importlib
import json
import os

import torch

# every model file, found as the engine finds them (nothing to register): the contract tests run on each
MODELS = sorted(f[:-3] for f in os.listdir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        "models")) if f.endswith(".py") and not f.startswith("_"))
STAR = dict(vocab_size=24, pad_id=0, bos_id=1, eos_id=2, mask_id=3)  # star data's ids (mask is reserved)


SMALL = dict(STAR, block_size=40, max_prompt_len=30, max_target_len=10, n_layer=2, n_head=2, n_embd=32)


def small_model(module, **kw):
    """A 2-layer model of a models/<name>.py on star-like ids, seeded, in eval mode (kw: Config overrides)."""
    torch.manual_seed(0)
    return module.Model(module.Config(**{**SMALL, **kw})).eval()


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


def check_resume(train_main, model: str, dataset: str, tiny: list[str], tmp_path, *extra: str):
    """2N steps in one go == N steps, stop, resume, N more: the same losses and bit-identical weights (as
    tests/test_engine.py checks for ARLM). Dropout, EMA and an evaluation at the stop are on, so the
    collate noise, the dropout RNG and the EMA all have to continue where they were."""
    common = [f"--dataset={dataset}", "--lr_schedule=constant", "--eval_interval=5", "--ema_decay=0.9",
              "--dropout=0.1", *tiny, f"--model={model}", *extra]
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    train_main(common + [f"--out_dir={full}", "--max_iters=10"])
    train_main(common + [f"--out_dir={split}", "--max_iters=5"])
    train_main(common + [f"--out_dir={split}", "--max_iters=10", "--resume"])
    assert len(losses(full)) == 10 and losses(full) == losses(split)
    a, b = checkpoint(full), checkpoint(split)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])


def forward_with_hidden(m, tokens: torch.Tensor, prompt_lens: torch.Tensor, seed: int = 3):
    """One noised batch through a model whose trunk reads (x, n_real, t) (FlexMDM, Edit Flows), and the trunk's
    hidden states, for loss checks by hand: -> batch, loss, metrics, h (B, W, C)."""
    b = m.collate(tokens, prompt_lens, generator=torch.Generator().manual_seed(seed))
    loss, metrics = m(b)
    with torch.no_grad():
        h = m.trunk(b["x"], b["n_real"], b["t"])
    return b, loss, metrics, h


def bounds_after_overfit(m, prompt: list[int], x: list[int], steps: int, draws: int = 20, rows: int = 1000):
    """Train m on one row for `steps` (batch 64, AdamW 3e-3), then estimate its two bounds on that row per row (nats:
    len(x) tokens + the end): the loss (the paper's bound) and metrics['nll'] (the aligned one), each over `draws`
    batches of `rows` draws -> (aligned, paper), (draws,) each."""
    opt, g = torch.optim.AdamW(m.parameters(), lr=3e-3), torch.Generator().manual_seed(1)
    m.train()
    for _ in range(steps):
        loss, _ = m(m.collate(torch.tensor([prompt + x] * 64), torch.tensor([len(prompt)] * 64), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    aligned, paper = [], []
    with torch.no_grad():
        for _ in range(draws):
            loss, metrics = m(m.collate(torch.tensor([prompt + x] * rows), torch.tensor([len(prompt)] * rows),
                                        generator=g))
            aligned.append(metrics["nll"].item() * (len(x) + 1))
            paper.append(loss.item() * (len(x) + 1))
    return torch.tensor(aligned), torch.tensor(paper)
