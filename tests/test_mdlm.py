"""
Tests for models/mdlm.py: the noising follows the schedule, SUBS makes visible positions free, the loss
is a sane bound that training drives down (also with time conditioning), the sampler keeps the prompt and
leaves no mask, the cached sampler is exactly the uncached one with fewer network rows, noise_removal
decides the last fill, and a run resumes exactly. CPU only, under a minute.

    python -m pytest tests/test_mdlm.py -q
"""
import json
import math
import os

import pytest
import torch

import engine
import train
from data.loader import NanoError
from models import mdlm
from rows import STAR, check_resume, checkpoint, losses, small_model, star_rows  # tests/rows.py


def small(**kw) -> mdlm.Model:
    return small_model(mdlm, **kw)


def test_mask_rate_follows_t():
    c = mdlm.Config(**STAR, block_size=200, n_layer=1, n_head=1, n_embd=8)  # no prompts: the canvas is 200 + 1
    m = mdlm.Model(c)
    B = 1000
    tokens = torch.randint(4, 24, (B, 200))
    b = m.collate(tokens, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert b["xt"].shape == (B, 201) and (b["target"][:, 200] == 0).all()  # the end: a pad after every row
    t, frac = b["t"], (b["xt"] == m.mask_id).float().mean(1)
    assert t.min() >= c.t_min and t.max() <= 1
    # antithetic: exactly one time in each of the B strata of [t_min, 1]
    u = (t - c.t_min) / (1 - c.t_min)
    assert torch.equal((u * B).floor().long().clamp(max=B - 1).sort().values, torch.arange(B))
    # each row masks a Binomial(200, (1-eps) t) share: check the mean, the spread and the trend
    p = (1 - c.schedule_eps) * t
    z = (frac - p) / (p * (1 - p) / 201).sqrt().clamp(min=1e-3)
    assert abs(z.mean()) < 0.15 and 0.8 < z.std() < 1.2
    assert torch.corrcoef(torch.stack([frac, p]))[0, 1] > 0.99
    x0 = torch.nn.functional.pad(tokens, (0, 1))  # the rows and the pad that ends them
    assert torch.equal(b["xt"][b["xt"] != m.mask_id], x0[b["xt"] != m.mask_id])  # the rest is untouched


def test_prompt_never_masked_and_canvas_layout():
    m = small()
    tokens, pl = star_rows(6, [12, 20, 30, 16, 24, 30], [4, 10, 6, 8, 10, 2])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))
    W = 30 + 11  # longest prompt + canvas (the longest target + 1 for its end)
    assert b["xt"].shape == (6, W) and b["cidx"].shape == (6, 11)
    col = torch.arange(W)[None, :]
    prompt = col < pl[:, None]
    tokens = torch.nn.functional.pad(tokens, (0, W - tokens.size(1)))  # the rows were trimmed to 36 wide
    assert torch.equal(b["xt"][prompt], tokens[prompt]) and not (b["xt"][prompt] == m.mask_id).any()
    assert torch.equal(b["cidx"][:, 0], pl)
    # the canvas targets are the target then pad, and the positions after a row's canvas are hidden
    assert torch.equal(b["target"][0], torch.cat([tokens[0, 12:16], torch.zeros(7, dtype=torch.long)]))
    assert torch.equal(b["keep"], col < (pl + 11)[:, None])
    again = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))  # reproducible
    assert all(torch.equal(b[k], again[k]) for k in ("xt", "t", "target"))


def test_unmasked_positions_cost_nothing():
    m = small()
    tokens, pl = star_rows(8, [30] * 8, [10] * 8)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    loss, metrics = m(b)
    # the loss is the 1/t-weighted CE of the masked positions only, over all canvas positions
    logp = m.canvas_logits(b["xt"], b["cidx"]).log_softmax(-1).gather(2, b["target"][..., None]).squeeze(-1)
    masked = b["xt"].gather(1, b["cidx"]) == m.mask_id
    manual = (-(logp * masked) / b["t"][:, None]).sum() / (8 * (10 + 1))  # every target is 10 tokens + its end
    assert torch.allclose(loss, manual, atol=1e-6) and metrics["n_tokens"] == 88
    assert masked[:, 10].any()  # the end (the pad after a full-length target) is scored like any position
    # nothing masked: exactly zero loss and zero gradient; the mask token is never predicted
    m.train()
    loss0, _ = m(dict(b, xt=torch.nn.functional.pad(tokens, (0, 1))))  # the clean rows (and their end) as input
    loss0.backward()
    assert loss0.item() == 0.0 and all(p.grad is None or not p.grad.any() for p in m.parameters())
    assert m.canvas_logits(b["xt"], b["cidx"])[..., m.mask_id].eq(float("-inf")).all()


def test_loss_at_init_is_about_log_vocab():
    m = small()
    tokens, pl = star_rows(512, [30] * 512, [10] * 512)
    loss, _ = m(m.collate(tokens, pl, generator=torch.Generator().manual_seed(3)))
    # E[masked / t] = 1 - eps per position, each masked one costs ~log(V - 1) (the mask is excluded)
    assert abs(loss.item() - math.log(23)) < 0.3


def test_overfit_one_batch(star_data, tmp_path):
    out = str(tmp_path / "mdlm")
    r = train.main([f"--dataset={star_data()}", f"--out_dir={out}", "--model=mdlm", "--overfit_batches=1",
                    "--max_iters=200", "--batch_size=16", "--n_layer=2", "--n_embd=64", "--learning_rate=3e-3",
                    "--warmup_iters=10", "--lr_schedule=constant", "--eval_interval=200", "--eval_examples=16",
                    "--eval_gen_examples=16", "--eval_batch_size=16", "--log_interval=5", "--steps=16"])
    with open(os.path.join(out, "log.jsonl")) as f:
        curve = [row["loss"] for row in map(json.loads, f) if "loss" in row]
    assert 2.0 < sum(curve[:3]) / 3  # starts near log V
    assert sum(curve[-5:]) / 5 < 0.25 * sum(curve[:3]) / 3  # and falls
    assert r["step"] == 200 and "val_seq_acc" in r


def test_samples_keep_prompt_and_leave_no_mask():
    m = small(steps=16, cache=False)  # every call sees the whole batch, so each can be checked row by row
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    prompt = torch.where(torch.arange(tokens.size(1))[None] < pl[:, None], tokens, 99)[:, :30]  # junk padding
    seen, net = [], m.canvas_logits
    m.canvas_logits = lambda xt, *a: (seen.append(xt.clone()), net(xt, *a))[1]  # spy on the network's input
    out, steps = m.generate(prompt, pl, max_new_tokens=10, generator=torch.Generator().manual_seed(0), history=True)
    assert out.shape == (5, 10) and not (out == m.mask_id).any() and ((out >= 4) & (out < 24) | (out <= 2)).all()
    assert not (steps[-1] == m.mask_id).any() and (steps[0] == m.mask_id).any() and len(seen) >= 2
    is_prompt = torch.arange(30)[None] < pl[:, None]
    for xt in seen:  # every network call saw each row's prompt, unmasked
        assert torch.equal(xt[:, :30][is_prompt], tokens[:, :30][is_prompt])
    ended = (out == -1).long()
    assert torch.equal(ended.cummax(1).values, ended)  # -1 only after the end: once a row stops it stays stopped


def test_finish_cuts_at_pad_and_drops_eos():
    m = small()
    canvas = torch.tensor([[5, 6, 0, 7], [5, 2, 0, 0], [5, 6, 7, 8], [0, 5, 6, 7]])
    assert m.finish(canvas).tolist() == [[5, 6, -1, -1], [5, -1, -1, -1], [5, 6, 7, 8], [-1, -1, -1, -1]]


def test_rows_do_not_see_other_rows_padding():
    """A row's logits do not depend on the prompt lengths of the rest of the batch (hidden positions)."""
    m = small()
    tokens, pl = star_rows(3, [12, 30, 20], [10, 4, 6])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(4))
    both = m.canvas_logits(b["xt"], b["cidx"], b["keep"])
    alone = m.canvas_logits(b["xt"][:1, :12 + 11], b["cidx"][:1])
    assert torch.allclose(both[:1], alone, atol=1e-5)


@pytest.mark.parametrize("steps", [8, 64])
def test_cache_is_exact_and_cheaper(steps):
    """cache=True returns exactly the tokens of cache=False (same seed) and runs the network only on the rows
    that changed since their last run: the count is derived here from the canvases the reference saw."""
    m = small(steps=steps)
    tokens, pl = star_rows(4, [30, 24, 30, 12], [10, 8, 4, 10])
    prompt = tokens[:, :30]
    net, runs = m.canvas_logits, {}
    for cache in (True, False):
        m.config.cache = cache
        seen = []
        m.canvas_logits = lambda xt, cidx, *a: (seen.append(xt.gather(1, cidx)), net(xt, cidx, *a))[1]
        out = m.generate(prompt, pl, max_new_tokens=10, generator=torch.Generator().manual_seed(5))
        runs[cache] = (out, m.forward_rows, seen)
    del m.canvas_logits
    assert torch.equal(runs[True][0], runs[False][0])  # the same tokens
    ref = runs[False][2]  # (4, 11) canvas of every row before each network call of the reference
    assert all(len(c) == 4 for c in ref) and runs[False][1] == 4 * len(ref)  # the reference runs every row
    changed = [torch.ones(4, dtype=torch.bool)] + [(a != b).any(1) for a, b in zip(ref, ref[1:])]
    expected = sum(int((ch & (c == m.mask_id).any(1)).sum()) for ch, c in zip(changed, ref))
    assert runs[True][1] == expected < runs[False][1]  # only changed rows with masks left: strictly fewer


def test_time_conditioning_disables_the_cache():
    m = small(time_cond=True, steps=32)
    tokens, pl = star_rows(2, [30, 30], [10, 10])
    out = m.generate(tokens[:, :30], pl, max_new_tokens=10, generator=torch.Generator().manual_seed(6))
    assert m.forward_calls == 32 and not (out == m.mask_id).any()
    loss, _ = m(m.collate(tokens, pl, generator=torch.Generator().manual_seed(6)))
    assert math.isfinite(loss.item())


def test_lm_data_without_mask_or_pad():
    """Stream windows (no pad, no mask id in the data): the mask takes the id vocab_size, the canvas is the window."""
    c = mdlm.Config(vocab_size=50, pad_id=None, bos_id=49, eos_id=49, mask_id=None, block_size=16,
                    n_layer=1, n_head=2, n_embd=16, steps=8)
    m = mdlm.Model(c).eval()
    assert m.mask_id == 50 and m.wte.num_embeddings == 51
    tokens = torch.randint(0, 50, (4, 16))
    loss, metrics = m(m.collate(tokens, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0)))
    assert math.isfinite(loss.item()) and metrics["n_tokens"] == 64
    out = m.generate(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long), max_new_tokens=16)
    assert out.shape == (4, 16) and ((out >= 0) & (out < 50)).all()


def test_loss_is_divided_by_target_tokens_plus_end():
    """Variable targets: the count is each target's length + 1 for the pad that ends it (ARLM's eos), also
    for the longest target (the canvas has room for its end); the loss is the bound per unit."""
    m = small()
    tokens, pl = star_rows(4, [30, 30, 20, 12], [4, 10, 6, 8])
    loss, metrics = m(m.collate(tokens, pl, generator=torch.Generator().manual_seed(7)))
    assert metrics["n_tokens"] == metrics["nll_tokens"] == (4 + 1) + (10 + 1) + (6 + 1) + (8 + 1)
    assert metrics["nll"] == loss and mdlm.Model.nll_kind == "bound"


def test_noise_removal_decides_the_last_fill():
    """One step ending at t = 0.5 leaves about half the canvas masked for the end: noise_removal=True fills
    it with the argmax of p(x0) on the last canvas, False with a draw from it; neither leaves a mask."""
    m = small(steps=1, sample_eps=0.5, cache=False)  # cache=False: the last call sees every row
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    net, runs = m.canvas_logits, {}
    for removal in (True, False):
        m.config.noise_removal = removal
        seen = []
        m.canvas_logits = lambda xt, cidx, *a: (seen.append(xt.clone()), net(xt, cidx, *a))[1]
        out, steps = m.generate(tokens[:, :30], pl, 10, generator=torch.Generator().manual_seed(0), history=True)
        runs[removal] = (out, steps, seen)
    del m.canvas_logits
    (out1, steps1, seen1), (out0, steps0, _) = runs[True], runs[False]
    assert len(seen1) == len(steps1) == 2 and torch.equal(steps1[0], steps0[0])  # the same until the last fill
    cidx, keep, _ = m.layout(pl, 11, "cpu")
    last = seen1[1].gather(1, cidx)  # (5, 11) the canvas the last fill starts from
    left = (last == m.mask_id)[:, :10]  # still masked (in the 10 columns history shows)
    assert 10 < left.sum() < 40
    best = net(seen1[1], cidx, keep).argmax(-1)[:, :10]
    best = torch.where(best == 0, -1, best)  # history shows pad as -1
    assert torch.equal(steps1[1][left], best[left])  # True: the argmax
    assert not torch.equal(steps0[1][left], best[left])  # False: a draw, which differs somewhere
    assert torch.equal(steps0[1][~left], steps1[1][~left])
    for out, steps in ((out1, steps1), (out0, steps0)):
        assert not (out == m.mask_id).any() and not (steps[-1] == m.mask_id).any()


def test_time_conditioning_trains(star_data, tiny, tmp_path):
    """time_cond=True through train.main: the loss falls and the adaLN layers (zero at init) have moved, so
    the time input reaches the network."""
    out = str(tmp_path / "time_cond")
    train.main([f"--dataset={star_data()}", f"--out_dir={out}", *tiny, "--model=mdlm", "--time_cond=True",
                "--overfit_batches=1", "--max_iters=60", "--learning_rate=3e-3", "--lr_schedule=constant",
                "--eval_interval=60"])
    curve = losses(out)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731 (small t weighs 1/t: single steps spike)
    assert median(curve[-10:]) < median(curve[:10]) - 0.3
    ada = {k: v for k, v in checkpoint(out)["model"].items() if "ada" in k}
    assert len(ada) == 2 + 2 and all(v.abs().sum() > 0 for v in ada.values())  # the block's and the final one


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    check_resume(train.main, "mdlm", star_data(), tiny, tmp_path)


def test_count_sampling_masks_k_positions_and_estimates_the_same_bound():
    """time_sampling='count': row i masks exactly k_i positions, k stratified over 1..L, and the loss, averaged
    over many draws, equals the continuous-time estimate of the same bound (a wrong weight, e.g. 1/k or
    L/(k+1), moves it by >= 9%), with a smaller spread from batch to batch."""
    tokens, pl = star_rows(64, [30] * 64, [10] * 64)
    cont, count = small().train(), small(time_sampling="count").train()  # (evaluation always counts)
    L = count.canvas_len  # 11
    b = count.collate(tokens, pl, generator=torch.Generator().manual_seed(0))
    k = (b["xt"].gather(1, b["cidx"]) == count.mask_id).sum(1)  # (B,)
    assert torch.equal(b["t"], k.float() / L) and k.min() >= 1 and k.max() <= L
    per_k = torch.bincount(k, minlength=L + 1)[1:]  # stratified: every k about 64/11 times, none left out
    assert per_k.min() >= 64 // L and per_k.max() <= 64 // L + 2
    est = {}
    with torch.no_grad():
        for name, m in (("continuous", cont), ("count", count)):
            g = torch.Generator().manual_seed(1)
            est[name] = torch.stack([m(m.collate(tokens, pl, generator=g))[0] for _ in range(300)])
    assert est["count"].mean() == pytest.approx(est["continuous"].mean().item(), rel=0.03)
    assert est["count"].std() < 0.5 * est["continuous"].std()
    with pytest.raises(NanoError, match="time_sampling='counts' must be one of 'continuous', 'count'"):
        engine.check_limits("mdlm", {"time_sampling": "counts"})


def test_confidence_order_reveals_the_surest_masks_first():
    """order='confidence': a network whose top probability falls along the canvas (position j's argmax is
    token 4 + j, surer for smaller j) is revealed left to right, each position by its argmax; order='random'
    (MDLM's) reveals in another order. Both reveal one position a step here on average."""
    m = small(steps=40, cache=False, order="confidence")
    L, V = m.canvas_len, m.n_vocab
    sure = torch.full((L, V), -5.0)
    sure[torch.arange(L), 4 + torch.arange(L)] = torch.linspace(8.0, 1.0, L)  # (L, V) position 0 surest
    m.canvas_logits = lambda xt, cidx, *a: sure.expand(xt.size(0), L, V).masked_fill(
        torch.arange(V) == m.mask_id, float("-inf"))
    tokens, pl = star_rows(3, [12, 12, 12], [10, 10, 10])
    out, steps = m.generate(tokens[:, :12], pl, max_new_tokens=10, generator=torch.Generator().manual_seed(0),
                            history=True)
    first_seen = torch.stack([(s != m.mask_id) for s in steps]).float().argmax(0)  # (B, 10) step revealed
    assert torch.equal(first_seen, first_seen.sort(1).values)  # never a later position before an earlier one
    assert torch.equal(out, (4 + torch.arange(10)).expand(3, 10))
    m.config.order = "random"
    _, steps = m.generate(tokens[:, :12], pl, max_new_tokens=10, generator=torch.Generator().manual_seed(0),
                          history=True)
    first_seen = torch.stack([(s != m.mask_id) for s in steps]).float().argmax(0)
    assert not torch.equal(first_seen, first_seen.sort(1).values)
    with pytest.raises(NanoError, match="order='surest' must be one of 'random', 'confidence'"):
        engine.check_limits("mdlm", {"order": "surest"})


@pytest.mark.parametrize("module_name", ["mdlm", "bd3lm"])
def test_evaluation_nll_estimates_the_exact_any_order_bound(module_name):
    """The eval-mode nll is an unbiased estimate of the bound of the chain generate() runs, whatever the
    training time sampling: evaluation counts masks (k ~ U{1..L}, weight L/k). For MDLM and a canvas of 3
    positions that bound is the any-order NLL averaged over the 3! reveal orders, enumerated here; t ~ U[t_min,
    1] (what evaluation once used) reads 1.3% below it at t_min = 0.5. BD3-LM with one block evaluates by the
    same counting: its eval-mode nll equals the train-mode nll of time_sampling='count', bit for bit."""
    import importlib
    import itertools
    module = importlib.import_module(f"models.{module_name}")
    keys = dict(vocab_size=6, pad_id=0, mask_id=5, block_size=3, max_prompt_len=1, max_target_len=2, n_layer=1,
                n_head=2, n_embd=16, t_min=0.5, time_sampling="continuous")
    if module_name == "bd3lm":
        keys["block_len"] = 0  # one block: the whole canvas, as MDLM
    torch.manual_seed(0)
    model = module.Model(module.Config(**keys)).eval()
    row = torch.tensor([[3, 1, 2, 0]])  # prompt 3 | target 1 2 | the end (pad)

    def nll(m) -> float:
        batch = m.collate(row.repeat(4000, 1), torch.ones(4000, dtype=torch.long),
                          generator=torch.Generator().manual_seed(0))
        return float(m(batch)[1]["nll"])

    with torch.no_grad():
        estimate = nll(model)
        if module_name == "bd3lm":
            counting = module.Model(module.Config(**{**keys, "time_sampling": "count"})).train()
            counting.load_state_dict(model.state_dict())
            assert estimate == nll(counting)
            return
        # exact: E over reveal orders of -sum log p(next revealed | revealed so far), per unit (2 tokens + end)
        cidx, keep, W = model.layout(torch.tensor([1]), 3, "cpu")
        total = 0.0
        for order in itertools.permutations(range(3)):
            canvas = torch.full((1, 3), 5)
            for pos in order:
                logits = model.canvas_logits(torch.cat([row[:, :1], canvas], 1), cidx, keep)  # (1, 3, V)
                total -= logits[0, pos].log_softmax(-1)[row[0, 1 + pos]].item()
                canvas[0, pos] = row[0, 1 + pos]
        exact = total / 6 / 3
    assert abs(estimate - exact) < 2e-3 * exact, (estimate, exact)
