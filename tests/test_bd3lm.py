"""
Tests for models/bd3lm.py: the attention mask is the paper's; the one training pass gives every block exactly
what the sampler gives it (the prompt and the clean blocks before it, nothing later); one block is MDLM (the
same loss as mdlm.py on the same noise); the noise is per block (times stratified, mask counts exact); the
KV-cached sampler writes the same tokens as the uncached one and computes fewer columns; generation stops at
the end and at the length limit; order='confidence' (MaskGIT's order in each block) keeps the prompt, reveals
the surest masks first and as many as the random order; training on one batch writes the targets; a run
resumes exactly. CPU, under a minute.

    python -m pytest tests/test_bd3lm.py -q
"""
import math

import pytest
import torch
import torch.nn.functional as F

import engine
import train
from data.loader import Dataset, NanoError
from models import bd3lm, mdlm
from rows import STAR, check_resume, losses, star_rows, trained_model  # tests/rows.py
from test_ilm import TOY, write_rows  # a hand-made rows dataset: 4 problems, targets of 2-4 tokens

NET = dict(block_size=40, max_prompt_len=30, max_target_len=10, n_layer=2, n_head=2, n_embd=32)


def small(**kw) -> bd3lm.Model:
    torch.manual_seed(0)
    return bd3lm.Model(bd3lm.Config(**{**STAR, **NET, **kw})).eval()


def test_attention_mask_is_the_papers():
    """L = 4, block_len = 2, no prompt. The paper orders the columns [x_t | x_0] (bd3lms models/dit.py); this
    file [x_0 | x_t], so the matrix is permuted back before comparing. Rows: queries, columns: keys."""
    paper = torch.tensor([  # xt0 xt1 | xt2 xt3 || x0_0 x0_1 | x0_2 x0_3
        [1, 1, 0, 0, 0, 0, 0, 0],  # x_t block 0: itself (M_BD)
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 1, 0, 0],  # x_t block 1: itself (M_BD) and clean block 0 (M_OBC)
        [0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],  # x_0 block 0: clean block 0 (M_BC)
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1],  # x_0 block 1: clean blocks 0 and 1 (M_BC)
        [0, 0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    lay = bd3lm.Model.columns(torch.zeros(1, dtype=torch.long), 0, 4, 0, 4, 2)
    ours = bd3lm.block_attention(lay["blk"], lay["noised"], lay["valid"])[0, 0]  # (8, 8) in [x_0 | x_t] order
    order = torch.tensor([4, 5, 6, 7, 0, 1, 2, 3])  # paper column -> our column
    assert torch.equal(ours[order][:, order], paper)
    # both halves at positions 0..3 (one rotary table for both, as the official code)
    assert lay["pos"][0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    # with prompts (P = 2; row 1's prompt has 1 token): the prompt is a clean block -1 that every block and
    # the prompt itself see, and an unused prompt column is seen by nothing but itself
    lay = bd3lm.Model.columns(torch.tensor([2, 1]), 2, 4, 0, 4, 2)
    m = bd3lm.block_attention(lay["blk"], lay["noised"], lay["valid"])[:, 0]  # (2, 10, 10)
    assert torch.equal(m[0, :, :2], torch.ones(10, 2, dtype=torch.bool))
    assert torch.equal(m[1, :, 0], torch.ones(10, dtype=torch.bool))
    assert torch.equal(m[1, :, 1], torch.arange(10) == 1)
    assert torch.equal(m[0, 2:, 2:], ours) and torch.equal(m[1, 2:, 2:], ours)  # the canvas part: as above
    assert lay["pos"].tolist() == [[0, 1, 2, 3, 4, 5, 2, 3, 4, 5], [0, 1, 1, 2, 3, 4, 1, 2, 3, 4]]


@pytest.mark.parametrize("block_len", [1, 3, 0])
def test_each_block_sees_exactly_what_the_sampler_gives_it(block_len):
    """The training pass over [prompt | x_0 | x_t] gives block b the logits of a separate pass over [prompt |
    clean blocks < b | noised block b] (what generate computes without the KV cache): no later block, clean or
    noised, reaches it. With neighbour_mix and absolute positions on, prompts of different lengths."""
    m = small(block_len=block_len, neighbour_mix=True, abs_pos=True)
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))
    idx, L = b["idx"], m.canvas_len
    P = idx.size(1) - 2 * L
    bl = m.block_of(L)
    with torch.no_grad():
        full = m.logits(m.run(idx, pl, P, L, 0, bl)[:, P + L:])  # (B, L, V)
        for k0 in range(0, L, bl):
            n = min(bl, L - k0)
            alone = torch.cat([idx[:, :P + k0], idx[:, P + L + k0:P + L + k0 + n]], 1)
            part = m.logits(m.run(alone, pl, P, k0, k0, bl)[:, -n:])
            assert torch.allclose(full[:, k0:k0 + n], part, atol=1e-5), k0
        if bl == L:
            return  # one block: nothing follows it
        # and changing what follows block 0 (its clean copy included) leaves it alone
        k1 = bl
        changed = idx.clone()
        changed[:, P + k1:P + L] = 5
        changed[:, P + L + k1:] = m.mask_id
        again = m.logits(m.run(changed, pl, P, L, 0, bl)[:, P + L:])
        assert torch.allclose(full[:, :k1], again[:, :k1], atol=1e-5)
        assert not torch.allclose(full[:, k1:], again[:, k1:], atol=1e-3)  # a later block does change


def test_one_block_is_mdlm():
    """block_len = 0 (the whole canvas) with mdlm.py's weights and the same noise: the same logits and loss on
    rows without a prompt (the clean half is invisible to the noised canvas, whose only block is block 0).
    With a prompt the one difference is the layout: MDLM's prompt positions also attend to the canvas, a block
    model's prompt (block -1, run once into the KV cache) only to itself; the canvas sees the prompt in both.
    Without neighbour_mix: MDLM's canvas would mix in pad neighbours past a row's end the same way, but its
    prompt's last token mixes in the canvas's first, which a block model may not."""
    tokens, pl = star_rows(6, [0] * 6, [4, 10, 6, 8, 10, 2])
    m = small(block_len=0, abs_pos=True, bos_id=None)  # no bos: ours would never write one, MDLM may
    ref = mdlm.Model(mdlm.Config(**{**STAR, **NET, "bos_id": None}, abs_pos=True)).eval()
    ref.load_state_dict(m.state_dict())  # the same parameter names: strict
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    L = m.canvas_len
    assert torch.equal(b["t"], b["t"][:, :1].expand(-1, L))  # one time per row
    rb = ref.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    rb = dict(rb, xt=rb["xt"].scatter(1, rb["cidx"], b["idx"][:, -L:]), t=b["t"][:, 0])  # our noise
    assert torch.equal(rb["target"], b["target"]) and (b["idx"][:, -L:] == m.mask_id).any()
    with torch.no_grad():
        loss, metrics = m(b)
        ref_loss, ref_metrics = ref(rb)
        ours = m.logits(m.run(b["idx"], pl, 0, L, 0, L)[:, L:])
        theirs = ref.canvas_logits(rb["xt"], rb["cidx"], rb["keep"])
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5) and loss.item() > 1.0
    assert metrics["n_tokens"] == ref_metrics["n_tokens"] == sum([4, 10, 6, 8, 10, 2]) + 6
    # with prompts the canvas logits differ, a little: MDLM's prompt has seen the canvas
    tokens, pl = star_rows(6, [12, 20, 30, 16, 24, 30], [4, 10, 6, 8, 10, 2])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    rb = ref.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    rb = dict(rb, xt=rb["xt"].scatter(1, rb["cidx"], b["idx"][:, -L:]))
    P = b["idx"].size(1) - 2 * L
    with torch.no_grad():
        ours = m.logits(m.run(b["idx"], pl, P, L, 0, L)[:, P + L:])
        theirs = ref.canvas_logits(rb["xt"], rb["cidx"], rb["keep"])
    assert not torch.allclose(ours, theirs, atol=1e-4) and torch.allclose(ours, theirs, atol=0.05)


def test_loss_is_the_per_block_weighted_ce_over_units():
    """sum over blocks and rows of (1/t_b) x CE of the masked tokens (SUBS: unmasked cost 0), over target + 1
    per row; nothing masked: zero loss and zero gradient; the mask token is never predicted."""
    m = small(block_len=3)
    tokens, pl = star_rows(6, [12, 20, 30, 16, 24, 30], [4, 10, 6, 8, 10, 2])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(3))
    loss, metrics = m(b)
    L = m.canvas_len
    P = b["idx"].size(1) - 2 * L
    logits = m.logits(m.run(b["idx"], pl, P, L, 0, 3)[:, P + L:])
    masked = b["idx"][:, P + L:] == m.mask_id
    ce = F.cross_entropy(logits.transpose(1, 2), b["target"], reduction="none")  # (B, L)
    t = b["t"]  # (B, L)
    for blk in range(4):  # one time per block of 3 (the last block: position 9 and 10, the end)
        cols = slice(3 * blk, min(3 * blk + 3, L))
        assert (t[:, cols] == t[:, cols][:, :1]).all()
    units = sum([4, 10, 6, 8, 10, 2]) + 6
    assert metrics["n_tokens"] == units and metrics["nll"] == loss
    assert loss.item() == pytest.approx(((ce * masked) / t).sum().item() / units, rel=1e-5)
    assert logits[..., m.mask_id].eq(float("-inf")).all()
    m.train()
    clean = b["idx"].clone()
    clean[:, P + L:] = b["target"]
    loss0, _ = m(dict(b, idx=clean))
    loss0.backward()
    assert loss0.item() == 0.0 and all(p.grad is None or not p.grad.any() for p in m.parameters())


@pytest.mark.parametrize("sampling", ["continuous", "count"])
def test_each_block_has_its_own_time(sampling):
    """Every (row, block) draws its own time, the B x blocks times stratified (one in each stratum);
    'continuous' masks each position with probability (1 - eps) t of its block, 'count' exactly k of the block's
    n positions with t = k / n (k >= 1). The prompt and the clean half are never masked."""
    B = 400
    m = small(block_len=4, time_sampling=sampling).train()  # (evaluation always counts)
    tokens, pl = star_rows(B, [12] * B, [10] * B)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(4))
    L = m.canvas_len  # 11: blocks of 4, 4, 3
    P = b["idx"].size(1) - 2 * L
    assert not (b["idx"][:, :P + L] == m.mask_id).any() and torch.equal(b["idx"][:, P:P + L], b["target"])
    masked = (b["idx"][:, P + L:] == m.mask_id).float()
    t = b["t"][:, [0, 4, 8]]  # (B, 3) one time per block
    n = torch.tensor([4.0, 4.0, 3.0])
    counts = torch.stack([masked[:, 0:4].sum(1), masked[:, 4:8].sum(1), masked[:, 8:].sum(1)], 1)  # (B, 3)
    assert torch.corrcoef(torch.stack([t[:, 0], t[:, 1]]))[0, 1].abs() < 0.15  # independent blocks
    if sampling == "count":
        assert torch.equal(t, counts / n) and counts.min() >= 1
        per_k = [int((counts[:, j] == k).sum()) for j in range(3) for k in range(1, int(n[j]) + 1)]
        assert min(per_k) > B / 4 * 0.7
    else:
        assert t.min() >= m.config.t_min and t.max() <= 1
        u = (t - m.config.t_min) / (1 - m.config.t_min)
        assert torch.equal((u.flatten() * 3 * B).floor().long().clamp(max=3 * B - 1).sort().values, torch.arange(3 * B))
        p = (1 - m.config.schedule_eps) * t
        z = (counts - p * n) / (p * (1 - p) * n).sqrt().clamp(min=1e-3)
        assert abs(z.mean()) < 0.1 and 0.85 < z.std() < 1.15
        # the paper's clipped schedule, training only: t in [beta, omega]; evaluation counts masks (k / n)
        c = small(block_len=4, clip_beta=0.3, clip_omega=0.8)
        c.train()
        t = c.collate(tokens, pl, generator=torch.Generator().manual_seed(4))["t"]
        assert t.min() >= 0.3 and t.max() <= 0.8 and t.max() > 0.75
        c.eval()
        t = c.collate(tokens, pl, generator=torch.Generator().manual_seed(4))["t"][:, [0, 4, 8]]  # (B, 3)
        assert t.min() == 0.25 and t.max() == 1.0  # k / n: one mask of 4 .. all of them


def test_block_len_one_is_autoregressive():
    """block_len = 1 with mask counts: every position masked (one mask of weight 1 per block), each predicted
    from the clean tokens before it: the loss is the autoregressive NLL of the canvas over the units."""
    m = small(block_len=1, time_sampling="count")
    tokens, pl = star_rows(3, [12, 30, 20], [10, 4, 6])
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(5))
    L = m.canvas_len
    P = b["idx"].size(1) - 2 * L
    assert (b["idx"][:, P + L:] == m.mask_id).all() and (b["t"] == 1).all()
    loss, _ = m(b)
    total = 0.0
    with torch.no_grad():
        for k in range(L):  # one pass per token: [prompt | clean tokens before it | one mask]
            idx = torch.cat([b["idx"][:, :P + k], torch.full((3, 1), m.mask_id)], 1)
            lp = m.logits(m.run(idx, pl, P, k, k, 1)[:, -1]).log_softmax(-1)
            total -= lp.gather(1, b["target"][:, k:k + 1]).sum().item()
    assert loss.item() == pytest.approx(total / (10 + 4 + 6 + 3), rel=1e-5)


@pytest.mark.parametrize("order", ["random", "confidence"])
@pytest.mark.parametrize("block_len,steps", [(1, 4), (3, 8), (4, 64), (0, 16)])
def test_kv_cache_is_exact_and_cheaper(block_len, steps, order):
    """kv_cache=True writes exactly the tokens of kv_cache=False (same seed), with the same network calls on the
    same rows, but computes only the new columns; cache=False (no reuse of unchanged rows) too. Both orders."""
    m = small(block_len=block_len, steps_per_block=steps, neighbour_mix=True, abs_pos=True, order=order)
    tokens, pl = star_rows(5, [30, 24, 30, 12, 0], [10, 8, 4, 10, 10])
    run, cols = m.run, []
    m.run = lambda idx, *a, q0=0, **k: (cols.append((idx.size(1) - q0) * idx.size(0)), run(idx, *a, q0=q0, **k))[1]
    outs = {}
    for kv, cache in ((True, True), (False, True), (True, False), (False, False)):
        m.config.kv_cache, m.config.cache = kv, cache
        cols.clear()
        out, hist = m.generate(tokens[:, :30], pl, 10, generator=torch.Generator().manual_seed(6), history=True)
        outs[kv, cache] = (out, hist, m.forward_calls, m.forward_rows, sum(cols))
    del m.run
    for cache in (True, False):
        (a, ha, ca, ra, wa), (b, hb, cb, rb, wb) = outs[True, cache], outs[False, cache]
        assert torch.equal(a, b) and len(ha) == len(hb) and all(torch.equal(x, y) for x, y in zip(ha, hb))
        assert (ca, ra) == (cb, rb) and wa < wb
    assert torch.equal(outs[True, True][0], outs[True, False][0])  # the no-change cache is exact too
    assert outs[True, True][3] <= outs[True, False][3]
    out = outs[True, True][0]
    assert out.shape == (5, 10) and not (out == m.mask_id).any()


@pytest.mark.parametrize("order", ["random", "confidence"])
def test_generation_stops_at_the_end_and_at_the_limit(order):
    """A model that always writes pad ends every row in its first block: no network call for a later block,
    all -1. One that never writes pad runs every block and returns exactly max_new_tokens tokens."""
    m = small(block_len=3, steps_per_block=4, order=order)
    tokens, pl = star_rows(4, [30, 24, 30, 12], [10, 8, 4, 10])
    logits, run, seen = m.logits, m.run, []  # seen: (n_clean, k0, noised columns) of every network call
    m.run = lambda idx, lens, P, n_clean, k0, *a, **k: (
        seen.append((n_clean, k0, idx.size(1) - P - n_clean)), run(idx, lens, P, n_clean, k0, *a, **k))[1]
    m.logits = lambda h: torch.where(torch.arange(m.n_vocab) == 0, 10.0, -10.0).expand(*h.shape[:-1], -1)
    out, steps = m.generate(tokens[:, :30], pl, 10, generator=torch.Generator().manual_seed(7), history=True)
    assert (out == -1).all() and all(k0 == 0 and n_clean == 0 for n_clean, k0, _ in seen)  # the prompt, block 0
    assert all(s.shape == (4, 10) for s in steps)
    m.logits = lambda h: logits(h).masked_fill(torch.arange(m.n_vocab) == 0, float("-inf"))  # never pad
    seen.clear()
    for limit in (10, 4):
        out = m.generate(tokens[:, :30], pl, limit, generator=torch.Generator().manual_seed(7))
        assert out.shape == (4, limit) and (out > 0).all()  # no end written: cut at the limit, never past it
        starts = sorted({k0 for _, k0, n in seen if n > 0})  # the blocks sampled
        assert starts == list(range(0, limit + 1, 3))  # all of the (limit + 1)-position canvas
        seen.clear()
    del m.logits, m.run


def test_confidence_order_reveals_the_surest_masks_first():
    """order='confidence' with a network whose logits we set: within every block position j's argmax is token
    4 + j, sure in the order 3, 1, 0, 2 (the last block, 3 long: 1, 0, 2). Every step reveals a prefix of that
    order, by the argmax; the first step of block 0 reveals in each row as many as order='random' does with the
    same seed (the same uniform draws decide how many), and the random order breaks the prefix rule. The prompt
    reaches every network call intact and no mask is ever returned."""
    m = small(block_len=4, steps_per_block=4, order="confidence")
    V, B = m.n_vocab, 16
    sure = torch.full((4, V), -5.0)
    sure[torch.arange(4), 4 + torch.arange(4)] = torch.tensor([3.0, 6.0, 1.0, 8.0])  # (4, V) by place in the block
    m.logits = lambda h: sure[:h.size(1)].expand(h.size(0), -1, -1).masked_fill(m.banned, float("-inf"))
    tokens, pl = star_rows(B, [12] * 8 + [20] * 8, [10] * B, seed=3)
    prompt = tokens[:, :20]
    run, seen = m.run, []
    m.run = lambda idx, lens, P, *a, **k: (seen.append((idx[:, :P].clone(), k.get("rows"))),
                                           run(idx, lens, P, *a, **k))[1]
    out, steps = m.generate(prompt, pl, 10, generator=torch.Generator().manual_seed(8), history=True)
    del m.run
    assert len(seen) > 3
    for ctx, rows in seen:  # every call (the prompt, sampler steps, finished blocks) sees each row's own prompt
        rows = torch.arange(B) if rows is None else rows
        assert all(torch.equal(ctx[r, :pl[i]], prompt[i, :pl[i]]) for r, i in enumerate(rows.tolist()))
    assert torch.equal(out, torch.tensor([4, 5, 6, 7, 4, 5, 6, 7, 4, 5]).expand(B, 10)) and not (out == m.mask_id).any()
    orders = {0: [3, 1, 0, 2], 4: [3, 1, 0, 2], 8: [1, 0, 2]}  # block start -> most confident first
    for s in steps:
        for k0, ranked in orders.items():
            shown = s[:, k0:k0 + len(ranked)]  # (B, n): the mask id where still masked
            if (shown == -1).all():
                continue  # not yet written
            for row in (shown != m.mask_id).tolist():
                k = sum(row)
                assert all(row[j] for j in ranked[:k]), (k0, row)  # the k revealed are the k surest
    first = (steps[0][:, :4] != m.mask_id).sum(1)  # (B,) revealed at block 0's first step
    m.config.order = "random"
    _, rsteps = m.generate(prompt, pl, 10, generator=torch.Generator().manual_seed(8), history=True)
    assert torch.equal(first, (rsteps[0][:, :4] != m.mask_id).sum(1)) and first.sum() > 0 and first.max() >= 2
    prefix = [[bool(x) for x in row] for row in (rsteps[0][:, :4] != m.mask_id).tolist()]
    assert any(not all(row[j] for j in [3, 1, 0, 2][:sum(row)]) for row in prefix)  # random: not the surest first
    with pytest.raises(NanoError, match="order='surest' must be one of 'random', 'confidence'"):
        engine.check_limits("bd3lm", {"order": "surest"})


def test_lm_data_without_mask_or_pad():
    """Stream windows (no pad, no mask id in the data): the mask takes the id vocab_size, the canvas is the
    window, every position a unit; generation fills the whole window."""
    c = bd3lm.Config(vocab_size=50, pad_id=None, bos_id=49, eos_id=49, mask_id=None, block_size=16,
                     n_layer=1, n_head=2, n_embd=16, steps_per_block=4, block_len=5)
    m = bd3lm.Model(c).eval()
    assert m.mask_id == 50 and m.wte.num_embeddings == 51
    tokens = torch.randint(0, 50, (4, 16))
    loss, metrics = m(m.collate(tokens, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0)))
    assert math.isfinite(loss.item()) and metrics["n_tokens"] == 64
    out = m.generate(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long), max_new_tokens=16)
    assert out.shape == (4, 16) and ((out >= 0) & (out < 50)).all()


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """train.py on one fixed batch of 32 rows: the 4 TOY problems of tests/test_ilm.py, repeated."""
    d = str(tmp_path_factory.mktemp("toy"))
    write_rows(d, *TOY, vocab_size=16)
    out = str(tmp_path_factory.mktemp("bd3lm_overfit"))
    train.main(["--model=bd3lm", f"--dataset={d}", f"--out_dir={out}", "--overfit_batches=1", "--batch_size=32",
                "--max_iters=600", "--eval_interval=600", "--eval_examples=4", "--eval_gen_examples=4",
                "--log_interval=10", "--learning_rate=3e-3", "--min_lr=3e-4", "--warmup_iters=10", "--n_layer=2",
                "--n_head=2", "--n_embd=32", "--weight_decay=0.0", "--device=cpu", "--seed=1337", "--block_len=2",
                "--time_sampling=count", "--steps_per_block=4", "--phases=[]"])
    return out, trained_model(out), Dataset(d, "train")


def test_overfit_loss_falls_and_sampler_writes_the_targets(overfit):
    """An untrained model writes none of them; this one (600 steps) writes all 4 problems for every seed, stopping
    each row at its own end (targets of 2, 2, 3 and 4 tokens: canvases of 3-5 positions, blocks of 2)."""
    out, model, data = overfit
    curve = losses(out)
    assert sum(curve[:2]) / 2 > 5 * sum(curve[-5:]) / 5
    tokens, prompt_lens = data.get(torch.arange(data.n_items).numpy())
    prompt, truth = data.split_prompt_target(tokens, prompt_lens)
    for seed in range(4):
        for kv in (True, False):
            model.config.kv_cache = kv
            pred = model.generate(prompt.clamp(min=0), prompt_lens, max_new_tokens=data.meta["max_target_len"],
                                  generator=torch.Generator().manual_seed(seed))
            assert torch.equal(pred[:, :truth.size(1)], truth) and (pred[:, truth.size(1):] == -1).all(), \
                f"{pred}\n{truth}"


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    check_resume(train.main, "bd3lm", star_data(), tiny, tmp_path)
