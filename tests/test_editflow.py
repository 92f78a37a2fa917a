"""
Tests for models/editflow.py: applying the edits still needed to x_t gives back the target exactly (both x0s:
deletions and substitutions of masks, insertions into nothing), the prompt is never edited, the columns jump
with probability kappa(t) and the row weights are w(t) / q(t); the loss equals a per-edit reference sum, is
finite from t = 0 to t ~ 1, and its time sampling is unbiased; the aligned bound (x0 empty) by enumeration and
against the exact NLL; a row's outputs do not depend on its batch; the sampler keeps the prompt, never writes a
mask, respects the length limit and counts its edits (either mask_order), and mask_order='confidence' edits as
many masks per step as the draws, the surest first, as their likeliest edit; training on one batch drives the
loss down and the sampler then writes the targets; a run resumes exactly. CPU, under a minute.

    python -m pytest tests/test_editflow.py -q
"""
import math

import pytest
import torch
import torch.nn.functional as F

import train
from data.loader import Dataset
from models import editflow
from models.editflow import DEL, INS, SUB
from rows import (STAR, bounds_after_overfit, check_resume, forward_with_hidden, losses, small_model,  # tests/rows.py
                  star_rows, trained_model)
from test_ilm import TOY, write_rows  # a hand-made rows dataset: 4 problems, targets of 2-4 tokens


def small(**kw) -> editflow.Model:
    return small_model(editflow, **kw)


def apply_edits(b: dict, i: int) -> list[int]:
    """Row i of a batch: x_t with every pending edit applied (insertions into a gap in column order)."""
    x, start, n_real = b["x"][i].tolist(), int(b["start"][i]), int(b["n_real"][i])
    canvas = x[start + 1:n_real]
    ins = {g: [] for g in range(len(canvas) + 1)}
    at = {}
    for kind, slot, tok in zip(b["op_kind"][i].tolist(), b["op_slot"][i].tolist(), b["op_tok"][i].tolist()):
        if kind == INS:
            ins[slot - start].append(tok)  # the gap after slot: START's is gap 0
        elif kind in (DEL, SUB):
            assert slot - start - 1 not in at  # one edit per position
            at[slot - start - 1] = (kind, tok)
    out = []
    for g in range(len(canvas) + 1):
        out += ins[g]
        if g < len(canvas):
            kind, tok = at.get(g, (None, None))
            out += [] if kind == DEL else [tok] if kind == SUB else [canvas[g]]
    return out


@pytest.mark.parametrize("x0", ["masks", "empty"])
def test_remaining_edits_turn_xt_into_the_target_and_the_prompt_is_never_edited(x0):
    m = small(x0=x0)
    tokens, pl = star_rows(64, [12, 20, 30, 16] * 16, [4, 10, 6, 8] * 16)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))
    seen = {INS: 0, DEL: 0, SUB: 0}
    for i in range(64):
        P, L = int(pl[i]), [4, 10, 6, 8][i % 4]
        assert int(b["start"][i]) == P and b["x"][i, :P].tolist() == tokens[i, :P].tolist()  # the prompt, clean
        assert b["x"][i, P] == m.start_id
        pend = b["op_kind"][i] >= 0
        assert (b["op_slot"][i][pend] >= P).all()  # no edit reads or touches the prompt
        assert apply_edits(b, i) == tokens[i, P:P + L].tolist()
        canvas = b["x"][i, P + 1:int(b["n_real"][i])]
        if x0 == "empty":
            assert not (canvas == m.mask_id).any()
        for k in seen:
            seen[k] += int((b["op_kind"][i] == k).sum())
    want = {"masks": (DEL, SUB), "empty": (INS,)}[x0]
    assert all((seen[k] > 5) == (k in want) and (seen[k] == 0) == (k not in want) for k in seen), seen
    assert b["n_units"].tolist() == [5, 11, 7, 9] * 16  # target tokens + 1 for the end
    again = m.collate(tokens, pl, generator=torch.Generator().manual_seed(1))  # reproducible
    assert all(torch.equal(b[k], again[k]) for k in b)


def test_repeated_insertions_into_one_gap_count_k():
    """x0 empty, t = 0: all of '5 7 5 5' is missing from the one gap; the three 5s give one x each time: k = 3."""
    m = small(x0="empty")
    tokens = torch.tensor([[9, 9, 5, 7, 5, 5]])
    b = m.collate(tokens, torch.tensor([2]), generator=torch.Generator().manual_seed(0), t=torch.zeros(1))
    assert b["op_kind"][0].tolist() == [INS] * 4 and b["op_slot"][0].tolist() == [2] * 4
    assert torch.allclose(b["op_logk"][0], torch.tensor([3.0, 1.0, 3.0, 3.0]).log())


def test_columns_jump_with_probability_kappa_and_rows_weigh_w_over_q():
    B, L = 4000, 10
    tokens, pl = star_rows(B, [6] * B, [L] * B)
    m = small(max_target_len=L)  # 10 masks, 10 tokens: 10 substitutions
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(2))
    t = b["t"].double()
    kap = t ** 3
    done = 1 - (b["op_kind"] >= 0).sum(1).double() / L
    assert abs((done - kap).mean()) < 0.01 and abs(((done - kap) * (t - 0.5)).mean()) < 0.01
    u = 1 - (1 - t).sqrt()  # antithetic: row i's u in the stratum [i / B, (i + 1) / B)
    assert ((u * B - torch.arange(B) - 0.5).abs() <= 0.5 + 1e-3).all()
    w = 3 * t ** 2 / (1 - kap)
    q = 1 / (2 * (1 - t).sqrt())
    ok = t < 0.99  # near 1, t in float32 is coarser than the u it came from (the weight uses u)
    assert torch.allclose(b["weight"].double()[ok], (w / q)[ok], rtol=1e-3)
    assert torch.allclose(b["one_minus_kappa"].double()[ok], (1 - kap)[ok], rtol=1e-4)


@pytest.mark.parametrize("x0", ["masks", "empty"])  # deletions and substitutions; insertions
def test_loss_is_the_per_edit_sum_per_unit(x0):
    m = small(x0=x0)
    tokens, pl = star_rows(8, [12, 20, 30, 16] * 2, [4, 10, 6, 8] * 2)
    b, loss, metrics, h = forward_with_hidden(m, tokens, pl)
    total = 0.0
    for i in range(8):
        w, omk, s0, n = float(b["weight"][i]), float(b["one_minus_kappa"][i]), int(b["start"][i]), int(b["n_real"][i])
        logit = m.rate_head(h[i]).double()  # (W, 3)
        pi = omk * F.softplus(logit)  # rate / w: (1 - kappa) softplus, but at a mask del + sub share 1
        at_mask = b["x"][i] == m.mask_id
        pi[at_mask, 1:] = logit[at_mask, 1:].softmax(-1)
        total += w * (pi[s0:n, INS].sum() + pi[s0 + 1:n, DEL].sum() + pi[s0 + 1:n, SUB].sum()).item()
        for kind, slot, tok, logk in zip(*(b[k][i].tolist() for k in ("op_kind", "op_slot", "op_tok", "op_logk"))):
            if kind < 0:
                continue
            lq = 0.0
            if kind != DEL:
                lg = (m.ins_head if kind == INS else m.sub_head)(h[i, slot]).double()
                lg[[m.mask_id, m.start_id, STAR["pad_id"], STAR["bos_id"]]] = float("-inf")
                lq = F.log_softmax(lg, -1)[tok].item()
            total += w * (-math.log(pi[slot, kind].item()) - lq + logk - 1)
    units = 2 * (5 + 11 + 7 + 9)
    assert metrics["n_tokens"] == metrics["nll_tokens"] == units
    assert x0 == "empty" or metrics["nll"] == loss  # (x0 empty, eval mode: nll is the aligned bound)
    assert loss.item() == pytest.approx(total / units, rel=1e-4)
    assert editflow.Model.nll_kind == "bound"


def few_token_rows(B: int = 8, seed: int = 0):
    """Star-like rows whose targets use 3 token ids: repeats, so x_t's alignment to the target is ambiguous."""
    tokens, pl = star_rows(B, [12, 20, 30, 16] * (B // 4), [4, 10, 6, 8] * (B // 4), seed=seed)
    tgt = (torch.arange(tokens.size(1))[None, :] >= pl[:, None]) & (tokens > 0)
    return torch.where(tgt, 4 + tokens % 3, tokens), pl


def test_aligned_bound_by_enumeration():
    """x0 empty: nll = the survival term plus, per gap g and token a, n_bar (log n_bar - 1 - log pi_g - log Q_g(a))
    with n_bar the mean over the fitting alignments of x_t to the target of the insertions of a pending in g;
    weighted and per unit as the loss, which it is below (the repeats make the alignment ambiguous)."""
    import itertools
    m = small(x0="empty")
    tokens, pl = few_token_rows()
    b, loss, metrics, h = forward_with_hidden(m, tokens, pl)
    total = 0.0
    for i in range(8):
        w, omk, s0, n = float(b["weight"][i]), float(b["one_minus_kappa"][i]), int(b["start"][i]), int(b["n_real"][i])
        pi = omk * F.softplus(m.rate_head(h[i]).double())  # no masks with x0 empty
        total += w * (pi[s0:n, INS].sum() + pi[s0 + 1:n, DEL].sum() + pi[s0 + 1:n, SUB].sum()).item()
        y, xt = [v for v in b["y"][i].tolist() if v >= 0], b["x"][i, s0 + 1:n].tolist()  # x_t: after START
        fits = [c for c in itertools.combinations(range(len(y)), len(xt)) if all(y[p] == v for p, v in zip(c, xt))]
        n_bar = {}
        for c in fits:
            for p in set(range(len(y))) - set(c):  # missing: pending in the gap after the x_t tokens before it
                key = (sum(q < p for q in c), y[p])
                n_bar[key] = n_bar.get(key, 0.0) + 1 / len(fits)
        for (g, a), nb in n_bar.items():
            lg = m.ins_head(h[i, s0 + g]).double()
            lg[[m.mask_id, m.start_id, STAR["pad_id"], STAR["bos_id"]]] = float("-inf")
            total += w * nb * (math.log(nb) - 1 - math.log(pi[s0 + g, INS].item()) - F.log_softmax(lg, -1)[a].item())
    assert metrics["nll"].item() == pytest.approx(total / (2 * (5 + 11 + 7 + 9)), rel=1e-4)
    assert metrics["nll"] < loss - 0.01 and metrics["alignment_slack"] > 0.01


def exact_nll(m: editflow.Model, prompt: list[int], x: list[int], n_grid: int = 400, eps: float = 1e-4) -> float:
    """x0 empty: -log p(x | prompt) of the network's edit chain (insert a into gap g at w pi_g Q_g(a), delete at
    w pi_del, substitute by v at w pi_sub Q_sub(v)): the forward equation over every subsequence of x (every
    other sequence is one lost state; the chain can reach x from there only by deletions, whose rates the
    lost state drops, so this is a lower bound on p and the check below a strict one), rates held at each
    interval's midpoint, solved exactly there (matrix exponentials), intervals even in log(1 - t)."""
    import itertools
    P = len(prompt)
    states = list(dict.fromkeys(tuple(x[i] for i in c) for n in range(len(x) + 1)
                                for c in itertools.combinations(range(len(x)), n)))
    index, S = {s: k for k, s in enumerate(states)}, len(states)
    xb = torch.full((S, P + 1 + len(x)), m.fill_id, dtype=torch.long)
    for k, s in enumerate(states):
        xb[k, :P + 1 + len(s)] = torch.tensor(prompt + [m.start_id] + list(s))
    n_real, start = torch.tensor([P + 1 + len(s) for s in states]), torch.full((S,), P)
    prob = torch.zeros(S + 1, dtype=torch.float64)
    prob[index[()]] = 1.0
    for i in range(n_grid):
        t0, t1, tm = (1 - eps ** (f / n_grid) for f in (i, i + 1, i + 0.5))
        t = torch.full((S,), tm)
        _, omk, dk = editflow.kappa_of(t, 1 - t)
        with torch.no_grad():
            h = m.trunk(xb, n_real, t, start)
            rate = (dk / omk)[:, None, None].double() * m.pi(h, xb == m.mask_id, omk[:, None]).double()  # (S, W, 3)
            q_ins = F.softmax(m.token_logits(h, INS), -1).double()  # (S, W, V)
            q_sub = F.softmax(m.token_logits(h, SUB), -1).double()
        Q = torch.zeros(S + 1, S + 1, dtype=torch.float64)
        for k, s in enumerate(states):
            for g in range(len(s) + 1):  # insert into the gap after START + g tokens
                for v in range(q_ins.size(2)):
                    Q[k, index.get(s[:g] + (v,) + s[g:], S)] += rate[k, P + g, INS] * q_ins[k, P + g, v]
            for p in range(len(s)):  # delete or substitute token p (column P + 1 + p)
                Q[k, index.get(s[:p] + s[p + 1:], S)] += rate[k, P + 1 + p, DEL]
                for v in range(q_sub.size(2)):
                    if v != s[p]:  # a self-substitution changes nothing
                        Q[k, index.get(s[:p] + (v,) + s[p + 1:], S)] += rate[k, P + 1 + p, SUB] * q_sub[k, P + 1 + p, v]
        prob = prob @ torch.linalg.matrix_exp((Q - torch.diag(Q.sum(1))) * (t1 - t0))
    return -math.log(prob[index[tuple(x)]].item())


def test_both_bounds_are_above_the_exact_nll_and_the_aligned_one_is_tighter():
    """x0 empty, a row with a repeated token, after 300 steps on it: the exact -log p(x) (forward equation)
    <= the aligned bound (nll) < the paper's bound (the loss), Monte Carlo over 20 batches of 1000 draws;
    2026-12-02 it gave 0.405 <= 0.664 < 1.359 nats."""
    m, prompt, x = small(x0="empty"), [5, 6], [7, 7, 8]
    aligned, paper = bounds_after_overfit(m, prompt, x, steps=300)  # nats per row, 20 estimates each
    exact = exact_nll(m, prompt, x)
    assert exact < 1.0  # the chain learnt the row: a bound far above it would not be tested
    assert exact < aligned.mean() - 3 * aligned.std() / 20 ** 0.5
    assert aligned.mean() + 0.1 < paper.mean()


@pytest.mark.parametrize("x0", ["masks", "empty"])
@pytest.mark.parametrize("t", [0.0, 1e-6, 0.5, 0.999, 1 - 1e-6])
def test_loss_finite_near_both_ends(t, x0):
    """t = 0: nothing done (every column pending); t -> 1: the rates carry (1 - kappa), so w (1 - kappa) stays
    finite, and so does the gradient."""
    m = small(x0=x0).train()
    tokens, pl = star_rows(16, [12, 20, 30, 16] * 4, [4, 10, 6, 8] * 4)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(4), t=torch.full((16,), t))
    if t == 0.0:
        assert ((b["op_kind"] >= 0).sum(1) == (10 if x0 == "masks" else pl.new_tensor([4, 10, 6, 8] * 4))).all()
    loss, metrics = m(b)
    loss.backward()
    assert math.isfinite(loss.item()) and 0 <= loss.item() < 200
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())


def test_time_sampling_is_unbiased():
    """t = 1 - (1 - u)^2 weighted w / q estimates the integral over t of the loss's integrand: the mean of many
    batches equals a midpoint rule over t (every row at one fixed time, its loss times q(t))."""
    tokens, pl = star_rows(64, [20] * 64, [8] * 64)
    m, g = small(x0="empty"), torch.Generator().manual_seed(5)
    grid = (torch.arange(200) + 0.5) / 200
    with torch.no_grad():
        sampled = torch.stack([m(m.collate(tokens, pl, generator=g))[0] for _ in range(200)])
        fixed = torch.stack([m(m.collate(tokens, pl, generator=g, t=torch.full((64,), float(t))))[0] for t in grid])
    assert sampled.mean() == pytest.approx((fixed / (2 * (1 - grid).sqrt())).mean().item(), rel=0.03)


@pytest.mark.parametrize("mask_order", ["random", "confidence"])
@pytest.mark.parametrize("x0", ["masks", "empty"])
def test_sampler_keeps_prompt_never_writes_a_mask_respects_the_limit_and_counts_edits(x0, mask_order):
    m = small(x0=x0, steps=16, mask_order=mask_order)
    with torch.no_grad():  # rates large enough that the length limit binds
        m.rate_head[2].bias.copy_(torch.tensor([3.0, 0.0, 0.0]))
    tokens, pl = star_rows(5, [12, 30, 20, 30, 8], [10, 4, 6, 8, 10])
    prompt = torch.where(torch.arange(tokens.size(1))[None] < pl[:, None], tokens, 99)[:, :30]  # junk padding
    seen, trunk = [], m.trunk
    m.trunk = lambda x, *a: (seen.append(x.clone()), trunk(x, *a))[1]  # spy on the network's input
    for limit in (10, 3):
        seen.clear()
        out, steps = m.generate(prompt, pl, limit, generator=torch.Generator().manual_seed(0), history=True)
        assert out.shape == (5, limit) and not (out == m.mask_id).any() and (out != 99).all()
        real = out >= 0
        assert torch.equal(real, real.long().cumprod(1).bool())  # -1 only after the end
        assert len(steps) == 16 and all(s.shape == (5, limit) for s in steps) and len(seen) == 16
        length = (steps[-1] >= 0).sum(1)  # the last canvas (out drops a trailing eos, the end)
        assert length.max() == limit and torch.equal(real.sum(1), length - (steps[-1].gather(
            1, (length - 1)[:, None]).squeeze(1) == STAR["eos_id"]).long())  # the limit binds, never exceeded
        is_prompt = torch.arange(30)[None] < pl[:, None]
        assert all(torch.equal(x[:, :30][is_prompt], tokens[:, :30][is_prompt]) for x in seen)
        e = m.edit_counts
        m0 = min(10, limit) if x0 == "masks" else 0
        # insertions happen (in a row whose canvas is full, only after a deletion, which is a draw: not in all)
        assert torch.equal(length, m0 + e["ins"] - e["del"]) and (e["ins"] > 0).sum() >= 3
        assert ((e["sub"] >= m0 - e["del"]) if x0 == "masks" else (e["sub"] >= 0)).all()  # every mask went
        assert (e["del_mask"] + e["sub_mask"] == m0).all()  # each of x0's masks edited exactly once
        assert (e["del_mask"] <= e["del"]).all() and (e["sub_mask"] <= e["sub"]).all()
    del m.trunk


def test_mask_order_confidence_edits_the_surest_masks_first(monkeypatch):
    """A hand-made network: six masks, canvas position p's edit is delete (position 5, share 0.9999; the last,
    so the others keep their slots) or substitute by token 10 + p, with a sureness set per position. 2 steps: the
    first edits Binomial(6, kappa(1/2) = 1/8) masks per row, as many as mask_order='random' fires from the same seed,
    and they must be the surest ones, as their likeliest edit; the last step edits the rest the same way."""
    surest = [5, 2, 0, 4, 1, 3]  # canvas positions, the surest first; 5 is a near-certain deletion
    strength = torch.zeros(7)  # per slot (0 = START): the logit of its token
    for r, pos in enumerate(surest[1:]):
        strength[pos + 1] = 8.0 - r  # a larger logit: a surer token
    share_logits = torch.zeros(7, 2)  # (del, sub) per slot
    share_logits[:, 1] = 12.0  # substitute, almost surely
    share_logits[6] = torch.tensor([12.0, 2.8])  # position 5: delete, 0.9999

    def run(**kw):
        m = small(x0="masks", steps=2, **kw)  # 6 masks: max_new_tokens
        C = m.config.n_embd

        def trunk(x, n_real, t, start=None):  # h[..., 0] = the slot (column - START's column)
            col = torch.arange(x.size(1))[None].float() - (x == m.start_id).float().argmax(1, keepdim=True)
            return F.pad(col[..., None], (0, C - 1))  # (B, W, C)

        def slot(h):
            return h[..., 0].long().clamp(0, 6)

        def rates(h, is_mask):  # no insertions, no edits of real tokens; the mask's split from the table
            return torch.zeros(*h.shape[:-1], 3), share_logits[slot(h)].softmax(-1) * is_mask[..., None]

        def token_logits(h, kind):
            lg = torch.zeros(*h.shape[:-1], m.n_vocab)
            lg.scatter_(-1, (10 + slot(h) - 1)[..., None], strength[slot(h)][..., None])
            return lg.masked_fill(m.banned, float("-inf"))

        for name, f in (("trunk", trunk), ("rates", rates), ("token_logits", token_logits)):
            monkeypatch.setattr(m, name, f)
        tokens, pl = star_rows(64, [12] * 64, [8] * 64)
        out, steps = m.generate(tokens, pl, 6, generator=torch.Generator().manual_seed(0), history=True)
        return m, out, steps

    def edited(canvas):  # (B, 6) after the first step -> (B,) masks edited: substituted + deleted
        return ((canvas >= 0) & (canvas != m.mask_id)).sum(1) + (canvas < 0).sum(1)

    m, out, steps = run(mask_order="confidence")
    k = edited(steps[0])
    assert torch.equal(k, edited(run(mask_order="random")[2][0]))  # as many as the draws fire
    assert len(set(k.tolist())) >= 4  # counts from the draws, not fixed
    for b in range(64):
        done = surest[:int(k[b])]
        want = [m.mask_id if pos not in done else 10 + pos for pos in range(6) if not (pos == 5 and 5 in done)]
        assert steps[0][b].tolist() == want + [-1] * (6 - len(want)), (b, int(k[b]))
    assert (out == torch.tensor([10, 11, 12, 13, 14, -1])).all()  # the rest at the end, each as its argmax
    assert (m.edit_counts["del_mask"] == 1).all() and (m.edit_counts["sub_mask"] == 5).all()


@pytest.mark.parametrize("mix", [False, True])
def test_a_rows_outputs_do_not_depend_on_its_batch(mix):
    """Rates and token logits of each row alone equal the same row's in a batch of rows of other lengths (with
    neighbour_mix, a row's last slot once saw the embedding of the padding after it as its right neighbour)."""
    m = small(neighbour_mix=mix, abs_pos=True)
    with torch.no_grad():  # off the zero-initialised gates, so every path carries signal
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tokens, pl = star_rows(8, [12, 20, 30, 16] * 2, [4, 10, 6, 8] * 2)
    b = m.collate(tokens, pl, generator=torch.Generator().manual_seed(0))
    assert len(set(b["n_real"].tolist())) > 3  # rows of many lengths

    def outputs(x, n_real, t, start):  # (B, W, C) -> rates and both token heads' logits, finite where read
        h = m.trunk(x, n_real, t, start)
        return torch.cat([m.rate_head(h), m.ins_head(h), m.sub_head(h)], -1)

    with torch.no_grad():
        batch = outputs(b["x"], b["n_real"], b["t"], b["start"])
        for i in range(8):
            s0, n = int(b["start"][i]), int(b["n_real"][i])
            alone = outputs(b["x"][i:i + 1, :n], b["n_real"][i:i + 1], b["t"][i:i + 1], b["start"][i:i + 1])
            assert torch.allclose(batch[i, s0:n], alone[0, s0:n], atol=1e-5), i


def test_shipped_star_easy_gives_what_it_gave_before_the_rewrite(tmp_path):
    """models/pretrained/editflow_star_easy.pt on the first 64 test prompts of star_easy (prepare.py's split,
    regenerated), each sampler setting a row uses, and its loss on a fixed batch: exactly what the code before
    the issue-44 rewrite gave (commit 28bb0b5; hashes of the (64, 8) outputs)."""
    import hashlib
    import engine
    from data.star.prepare import write_task
    write_task("easy", str(tmp_path), {"train": 1, "val": 1, "test": 5000}, seed=42)
    ckpt = engine.load_checkpoint("models/pretrained/editflow_star_easy.pt")
    model = engine.model_from_checkpoint(ckpt).eval()
    tokens, pl = Dataset(str(tmp_path), "test", 34).get(list(range(64)))
    prompt = tokens[:, :26]  # star_easy: every prompt has 26 tokens, every target 8
    for order, want in (("confidence", "c51613ae80df0b95"), ("random", "48e541589f71de06")):
        model.config.mask_order = order
        out = model.generate(prompt, pl, 8, generator=torch.Generator().manual_seed(0))
        assert hashlib.sha1(out.numpy().tobytes()).hexdigest()[:16] == want, order
    with torch.no_grad():
        loss, metrics = model(model.collate(tokens, pl, generator=torch.Generator().manual_seed(3)))
    assert loss.item() == pytest.approx(0.09999078512191772, rel=1e-6)
    assert metrics["pending"].item() * 576 == pytest.approx(294)  # edits still needed in the batch's 64 x 9 units


def test_lm_data_without_mask_or_pad():
    """Stream windows (no pad, no mask id in the data): the mask and START take new ids; every token is a unit."""
    c = editflow.Config(vocab_size=50, pad_id=None, bos_id=49, eos_id=49, mask_id=None, block_size=16,
                        n_layer=1, n_head=2, n_embd=16, steps=8)
    m = editflow.Model(c).eval()
    assert (m.mask_id, m.start_id, m.fill_id, m.wte.num_embeddings) == (50, 51, 51, 52)
    tokens = torch.randint(0, 49, (4, 16))
    loss, metrics = m(m.collate(tokens, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0)))
    assert math.isfinite(loss.item()) and metrics["n_tokens"] == 64
    out = m.generate(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long), 16,
                     generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 16) and ((out >= 0) & (out < 50) | (out == -1)).all()


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """train.py on one fixed batch of 32 rows: the 4 TOY problems of tests/test_ilm.py, repeated."""
    d = str(tmp_path_factory.mktemp("toy"))
    write_rows(d, *TOY, vocab_size=16)
    out = str(tmp_path_factory.mktemp("editflow_overfit"))
    train.main(["--model=editflow", f"--dataset={d}", f"--out_dir={out}", "--overfit_batches=1", "--batch_size=32",
                "--max_iters=600", "--eval_interval=600", "--eval_examples=4", "--eval_gen_examples=4",
                "--log_interval=10", "--learning_rate=3e-3", "--min_lr=3e-4", "--warmup_iters=10", "--n_layer=2",
                "--n_head=2", "--n_embd=32", "--weight_decay=0.0", "--device=cpu", "--seed=1337", "--steps=16"])
    return out, trained_model(out), Dataset(d, "train")


def test_overfit_loss_falls_and_sampler_writes_the_targets(overfit):
    """x0 = 4 masks (the longest target): targets of 2-4 tokens are written by substitutions and deletions."""
    out, model, data = overfit
    curve = losses(out)
    assert sum(curve[:2]) / 2 > 3 * sum(curve[-5:]) / 5  # falls
    tokens_, prompt_lens = data.get(torch.arange(data.n_items).numpy())
    prompt, truth = data.split_prompt_target(tokens_, prompt_lens)
    right = 0
    for seed in range(8):
        pred = model.generate(prompt.clamp(min=0), prompt_lens, max_new_tokens=data.meta["max_target_len"],
                              generator=torch.Generator().manual_seed(seed))
        right += int(((pred[:, :truth.size(1)] == truth).all(1) & (pred[:, truth.size(1):] == -1).all(1)).sum())
    assert right >= 24, f"{right} of 32 targets written exactly"


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    check_resume(train.main, "editflow", star_data(), tiny, tmp_path)
