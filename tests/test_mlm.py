"""
Tests for models/mlm.py: masking follows the per-example rate and spares the prompt, the loss covers masked
positions only and falls when training, and both decoding rules keep the prompt, leave no mask and take
the number of steps they promise (also with a threshold <= 0), and a run resumes exactly. CPU only, under a
minute.

    python -m pytest tests/test_mlm.py -q
"""
import json
import math
import os

import pytest
import torch

import train
from models import mlm
from rows import STAR, check_resume, small_model, star_rows  # tests/rows.py


def small(**kw) -> mlm.Model:
    return small_model(mlm, **kw)


def test_mask_rate_follows_t():
    m = mlm.Model(mlm.Config(**STAR, block_size=200, n_layer=1, n_head=1, n_embd=8))  # the canvas is 200 wide
    B = 1000
    tokens = torch.randint(4, 24, (B, 200))
    b = m.collate(tokens, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    t, frac = b["t"], (b["xt"] == m.mask_id).float().mean(1)
    assert 0 <= t.min() and t.max() < 1 and abs(t.mean() - 0.5) < 0.05  # t ~ U(0, 1)
    z = (frac - t) / (t * (1 - t) / 200).sqrt().clamp(min=1e-3)  # Binomial(200, t) per row
    assert abs(z.mean()) < 0.15 and 0.8 < z.std() < 1.2
    assert torch.corrcoef(torch.stack([frac, t]))[0, 1] > 0.99


@pytest.mark.parametrize("low", [0.5, 1.0])
def test_min_mask_rate_raises_every_rows_rate(low):
    """t ~ U(min_mask_rate, 1): 1.0 masks the whole canvas of every row; 0 (the default) is the draw above."""
    m = mlm.Model(mlm.Config(**STAR, block_size=200, n_layer=1, n_head=1, n_embd=8, min_mask_rate=low))
    tokens, zero = torch.randint(4, 24, (1000, 200)), torch.zeros(1000, dtype=torch.long)
    b = m.collate(tokens, zero, generator=torch.Generator().manual_seed(0))
    u = torch.rand(1000, generator=torch.Generator().manual_seed(0))  # the same generator's first draw
    assert torch.allclose(b["t"], low + (1 - low) * u) and b["t"].min() >= low
    if low == 1.0:
        assert (b["xt"] == m.mask_id).all()
    base = mlm.Model(mlm.Config(**STAR, block_size=200, n_layer=1, n_head=1, n_embd=8))
    assert torch.equal(base.collate(tokens, zero, generator=torch.Generator().manual_seed(0))["t"], u)


def test_prompt_never_masked_and_reproducible():
    m = small()
    tokens, pl = star_rows(6, [12, 20, 30, 16, 24, 30], [4, 10, 6, 8, 10, 2])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))
    W = 30 + 10
    prompt = torch.arange(W)[None, :] < pl[:, None]
    tokens = torch.nn.functional.pad(tokens, (0, W - tokens.size(1)))
    assert torch.equal(b["xt"][prompt], tokens[prompt])
    assert torch.equal(b["target"][1], tokens[1, 20:30])  # canvas = target, then pad
    again = m.collate(tokens[:, :36], pl, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(b[k], again[k]) for k in ("xt", "t", "target"))


def test_loss_counts_masked_positions_only():
    m = small()
    tokens, pl = star_rows(64, [30] * 64, [10] * 64)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    loss, metrics = m(b)
    assert abs(loss.item() / metrics["mask_frac"].item() - math.log(23)) < 0.3  # ~log(V-1) per masked token
    logp = m.canvas_logits(b["xt"], b["cidx"]).log_softmax(-1).gather(2, b["target"][..., None]).squeeze(-1)
    masked = b["xt"].gather(1, b["cidx"]) == m.mask_id
    assert torch.allclose(loss, -(logp * masked).sum() / 640, atol=1e-6) and metrics["n_tokens"] == 640
    loss0, _ = m(dict(b, xt=tokens.clone()))  # nothing masked: nothing to predict
    assert loss0.item() == 0.0


def test_overfit_one_batch(star_data, tmp_path):
    out = str(tmp_path / "mlm")
    r = train.main([f"--dataset={star_data()}", f"--out_dir={out}", "--model=mlm", "--overfit_batches=1",
                    "--max_iters=200", "--batch_size=16", "--n_layer=2", "--n_embd=64", "--learning_rate=3e-3",
                    "--warmup_iters=10", "--lr_schedule=constant", "--eval_interval=200", "--eval_examples=16",
                    "--eval_gen_examples=16", "--eval_batch_size=16", "--log_interval=5"])
    with open(os.path.join(out, "log.jsonl")) as f:
        curve = [row["loss"] for row in map(json.loads, f) if "loss" in row]
    assert 1.0 < sum(curve[:3]) / 3  # starts near log V on about half the canvas
    assert sum(curve[-5:]) / 5 < 0.25 * sum(curve[:3]) / 3  # and falls
    assert r["step"] == 200 and "val_seq_acc" in r


def decode(m: mlm.Model, tokens, pl, **kw):
    for k, v in kw.items():
        setattr(m.config, k, v)
    prompt = torch.where(torch.arange(tokens.size(1))[None] < pl[:, None], tokens, 99)[:, :30]  # junk padding
    seen = []
    net = mlm.Model.canvas_logits.__get__(m)
    m.canvas_logits = lambda xt, cidx, keep=None: (seen.append(xt.clone()), net(xt, cidx, keep))[1]
    out, steps = m.generate(prompt, pl, max_new_tokens=10, generator=torch.Generator().manual_seed(0), history=True)
    col = torch.arange(30)[None]
    for xt in seen:  # every network call saw each row's prompt, unmasked
        assert torch.equal(xt[:, :30][col < pl[:, None]], tokens[:, :30][col < pl[:, None]])
    assert out.shape == (len(pl), 10) and not (out == m.mask_id).any() and not (steps[-1] == m.mask_id).any()
    ended = (out == -1).long()
    assert torch.equal(ended.cummax(1).values, ended)  # -1 only after the end
    return out, steps, m.forward_calls


def test_fixed_number_per_step():
    m = small()
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    masks = lambda steps: [int((s == m.mask_id).sum(1).max()) for s in steps]  # noqa: E731
    _, steps, calls = decode(m, tokens, pl, unmask="fixed", steps=0)  # one per step
    assert calls == 10 and masks(steps) == list(range(9, -1, -1))
    _, steps, calls = decode(m, tokens, pl, unmask="fixed", steps=4)  # ceil(masked / steps left): 3, 3, 2, 2
    assert calls == 4 and masks(steps) == [7, 4, 2, 0]
    _, _, calls = decode(m, tokens, pl, unmask="fixed", steps=1, temperature=1.0)  # all at once, sampled
    assert calls == 1


def test_cumulative_uncertainty_threshold():
    m = small()
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    _, steps, calls = decode(m, tokens, pl, unmask="threshold", threshold=1e-6)  # at least one a step
    assert calls == 10 and all(int((s == m.mask_id).sum(1).max()) == 9 - i for i, s in enumerate(steps))
    _, _, calls = decode(m, tokens, pl, unmask="threshold", threshold=100.0)  # everything at once
    assert calls == 1


def test_threshold_at_or_below_zero_still_takes_one_a_step():
    """The rule alone takes nothing when threshold <= 0 (no sum is below it): the most confident masked
    position is taken anyway, so decoding ends with no mask, one position a step, as threshold=1e-6 does."""
    m = small()
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    ref, _, _ = decode(m, tokens, pl, unmask="threshold", threshold=1e-6)
    for threshold in (0.0, -1.0):
        out, steps, calls = decode(m, tokens, pl, unmask="threshold", threshold=threshold)
        assert calls == 10 and [int((s == m.mask_id).sum(1).max()) for s in steps] == list(range(9, -1, -1))
        assert torch.equal(out, ref)  # the same order and tokens as the smallest positive threshold
    conf, masked = torch.tensor([[0.3, 0.9, 0.6]]), torch.tensor([[True, False, True]])
    assert m.choose(conf, masked, steps_left=3).tolist() == [[False, False, True]]  # the likeliest masked one


def test_choose_rules():
    m = small(threshold=0.05)
    conf = torch.tensor([[0.9, 0.5, 0.99, 0.97, 0.2]])
    masked = torch.tensor([[True, True, True, False, True]])
    # uncertainties of the masked, most confident first: 0.01, 0.10, 0.50, 0.80, so the sums before each
    # are 0, 0.01, 0.11, 0.61: a position is taken while its sum is below the threshold
    assert m.choose(conf, masked, steps_left=5).tolist() == [[True, False, True, False, False]]
    m.config.threshold = 0.2
    assert m.choose(conf, masked, steps_left=5).tolist() == [[True, True, True, False, False]]
    m.config.threshold = 1.0
    assert m.choose(conf, masked, steps_left=5).tolist() == [[True, True, True, False, True]]
    m.config.unmask = "fixed"
    assert m.choose(conf, masked, steps_left=2).tolist() == [[True, False, True, False, False]]  # ceil(4/2) = 2


def test_lm_data_without_mask_or_pad():
    c = mlm.Config(vocab_size=50, pad_id=None, bos_id=49, eos_id=49, mask_id=None, block_size=16,
                   n_layer=1, n_head=2, n_embd=16, unmask="fixed", steps=4)
    m = mlm.Model(c).eval()
    assert m.mask_id == 50 and m.wte.num_embeddings == 51
    loss, metrics = m(m.collate(torch.randint(0, 50, (4, 16)), torch.zeros(4, dtype=torch.long)))
    assert math.isfinite(loss.item()) and metrics["n_tokens"] == 64
    out = m.generate(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long), max_new_tokens=16)
    assert out.shape == (4, 16) and ((out >= 0) & (out < 50)).all() and m.forward_calls == 4


def test_loss_is_divided_by_target_tokens_plus_end():
    m = small()
    tokens, pl = star_rows(4, [30, 30, 20, 12], [4, 10, 6, 8])
    loss, metrics = m(m.collate(tokens, pl, generator=torch.Generator().manual_seed(7)))
    assert metrics["n_tokens"] == (4 + 1) + 10 + (6 + 1) + (8 + 1)  # a full canvas has no room for the end


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    check_resume(train.main, "mlm", star_data(), tiny, tmp_path)


@pytest.mark.parametrize("module", ["mlm", "mdlm"])
def test_neighbour_mix_shows_each_position_its_neighbours(module):
    """With attention switched off (zero output projections) a position's hidden state can depend on other
    tokens only through neighbour_mix: on the tokens right beside it, and on no other."""
    import importlib
    m = importlib.import_module(f"models.{module}")
    for mix in (False, True):
        torch.manual_seed(0)
        model = m.Model(m.Config(vocab_size=24, pad_id=0, mask_id=3, block_size=12, max_target_len=4, n_layer=2,
                                 n_head=2, n_embd=32, neighbour_mix=mix, abs_pos=True)).eval()
        for block in model.blocks:
            torch.nn.init.zeros_(block.attn.proj.weight)
        x = torch.randint(4, 24, (1, 9))
        h = model.trunk(x)
        for j, moved in ((3, True), (5, True), (7, False)):  # neighbours of position 4, and one further away
            y = x.clone()
            y[0, j] = 4 + (x[0, j] - 3) % 20
            changed = not torch.allclose(model.trunk(y)[0, 4], h[0, 4])
            assert changed == (mix and moved), (mix, j)
