"""
Tests for models/ilm.py: the collator's drops put back reconstruct the rows, the target is a joint
distribution, the loss matches a dense reference, the NLL bound is checked against the exact likelihood
summed over every insertion order, overfitting one batch through train.py makes the sampler write those
targets exactly, batched sampling equals one-by-one sampling, the gap/token truncations (top_k, top_p) do
what they say, and a run resumes exactly. CPU only, well under a minute.

    python -m pytest tests/test_ilm.py -q
"""
import json
import math
import os
import sys
from collections import Counter
from itertools import combinations, permutations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import train  # noqa: E402
from data.loader import Dataset  # noqa: E402
from data.star.prepare import PAD, write_task  # noqa: E402
from models import ilm  # noqa: E402
from models.ilm import Config, Model  # noqa: E402
from rows import check_resume, meta_keys, trained_model  # noqa: E402  (tests/rows.py)

SIZES = {'train': 64, 'val': 16, 'test': 16}


def star_model(meta: dict, **kw) -> Model:
    torch.manual_seed(0)
    return Model(Config(**meta_keys(meta), n_layer=2, n_head=2, n_embd=32, **kw))


@pytest.fixture(scope='module')
def medium(tmp_path_factory):
    """A tiny star_medium dataset: prompts and targets of different lengths in one batch."""
    d = str(tmp_path_factory.mktemp('star') / 'medium')
    write_task('medium', d, SIZES, seed=0)
    return d


def unconditional_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with no prompt (the whole row is the target), repeated tokens, an empty row, a bos-led row."""
    rows = [[5, 5, 5, 6, 5, 0, 0], [7, 8, 9, 10, 11, 12, 13], [0] * 7, [9, 0, 0, 0, 0, 0, 0], [1, 6, 6, 7, 2, 0, 0]]
    return torch.tensor(rows), torch.zeros(len(rows), dtype=torch.long)


def reconstruct(batch: dict, b: int) -> list[int]:
    """Prompt, then every kept target slot followed by the tokens dropped into its gap (original order)."""
    x, first, n_real = batch['x'][b].tolist(), int(batch['first_gap'][b]), int(batch['n_real'][b])
    gap, tok = batch['gap'][b].tolist(), batch['tok'][b].tolist()
    seq = x[1:first]
    for s in range(first, n_real):
        if s > first:
            seq.append(x[s])
        seq += [t for g, t in zip(gap, tok) if g == s]
    return seq


def dense_target(batch: dict, n_vocab: int) -> torch.Tensor:
    """The sparse (gap, token, weight) triples summed into q (B, W, V)."""
    B, W = batch['x'].shape
    q = torch.zeros(B, W, n_vocab, dtype=torch.float64)
    b = torch.arange(B)[:, None].expand_as(batch['gap'])
    d = batch['gap'] >= 0
    q.index_put_((b[d], batch['gap'][d], batch['tok'][d]), batch['weight'][d].double(), accumulate=True)
    return q


def collated(medium):
    data = Dataset(medium, 'train')
    tokens, prompt_lens = data.get(np.arange(32))
    return data, tokens, prompt_lens


# ----------------------------------------------------------------------------- collator
def test_round_trip_and_prompt_kept(medium):
    data, tokens, prompt_lens = collated(medium)
    model = star_model(data.meta)
    for seed in range(20):
        batch = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(seed))
        for b in range(len(tokens)):
            row = tokens[b][tokens[b] != PAD].tolist()
            P = int(prompt_lens[b])
            assert reconstruct(batch, b) == row
            assert batch['x'][b, 0] == model.cls_id and batch['x'][b, P + 1] == model.sep_id
            assert batch['x'][b, 1:P + 1].tolist() == row[:P]  # the prompt is never dropped
            assert (batch['gap'][b, :P] == -1).all()
            assert (batch['gap'][b] != 0).all() and (batch['gap'][b][batch['gap'][b] >= 0] > P).all()


def test_round_trip_unconditional():
    tokens, prompt_lens = unconditional_rows()
    model = Model(Config(vocab_size=16, pad_id=0, bos_id=1, eos_id=2, mask_id=3, block_size=7, n_layer=1,
                         n_head=2, n_embd=16))
    seen_n = set()
    for seed in range(50):
        batch = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(seed))
        assert (batch['first_gap'] == 1).all()  # x = CLS SEP kept...
        for b in range(len(tokens)):
            row = tokens[b][tokens[b] != 0].tolist()
            if row and row[0] == 1:
                row = row[1:]  # a leading bos is the SEP slot itself
            assert reconstruct(batch, b) == row
        seen_n |= set((batch['weight'][1] > 0).sum().view(1).tolist())
    assert seen_n == set(range(8)), "n ~ U{0..L} should reach every value from 0 to L = 7"


def test_target_is_a_joint_distribution_and_stop_label(medium):
    data, tokens, prompt_lens = collated(medium)
    model = star_model(data.meta)
    stops = []
    for seed in range(10):
        batch = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(seed))
        q = dense_target(batch, model.n_vocab)
        mass = q.sum((1, 2))
        n = (batch['gap'] >= 0).sum(1)
        assert torch.allclose(mass, (n > 0).double())  # 1 with drops, 0 without
        assert torch.equal(batch['stop'], (n == 0).float())
        assert (n <= batch['n_target']).all()
        counts = q * n[:, None, None]  # q * n counts the dropped copies of each (gap, token)
        assert torch.allclose(counts, counts.round()) and torch.allclose(counts.sum((1, 2)), n.double())
        stops.append(batch['stop'])
    assert torch.cat(stops).sum() > 0


def test_collate_reproducible_with_generator(medium):
    data, tokens, prompt_lens = collated(medium)
    model = star_model(data.meta)
    a = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(3))
    b = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- loss
def test_loss_matches_dense_reference(medium):
    data, tokens, prompt_lens = collated(medium)
    model = star_model(data.meta)
    batch = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(1))
    loss, metrics = model(batch)
    h = model.trunk(batch['x'], batch['n_real'], batch['first_gap'])
    logits = model.insertion_logits(h, batch['first_gap'], batch['n_real']).double()  # (B, W, V)
    logp = logits.flatten(1).log_softmax(-1)
    q = dense_target(batch, model.n_vocab).flatten(1)
    ce = -(q * torch.where(q > 0, logp, 0.0)).sum(1)
    p_stop = torch.sigmoid(model.stop_head(h[:, 0]).squeeze(-1).double())
    bce = -torch.where(batch['stop'] > 0, p_stop.log(), (1 - p_stop).log())
    assert torch.allclose(loss.double(), (ce + bce).mean(), atol=1e-5)
    assert metrics['n_tokens'] == len(tokens)


# ----------------------------------------------------------------------------- the NLL bound, enumerated
def enumerate_row(model: Model, prompt: list[int], target: list[int]) -> dict:
    """Everything about one row, exactly, by enumeration (no sampling): the exact -log p(x) = -log of the sum
    over the L! insertion orders of the product of their step probabilities (continue decisions, (gap,
    token) choices, the final stop); the expected bound E_order[-log p(path)] - log L! (the mean over the
    k-subsets of the kept target for k = 0..L of each state's step loss, summed over k); and the old bound,
    which subtracted the entropy of the (gap, token) target at each state instead of log L!."""
    L, first = len(target), len(prompt) + 1
    states = {}

    def state(kept: frozenset):  # -> log p(stop), log p(continue), log p(gap, token | continue) (W, V)
        if kept not in states:
            seq = [model.cls_id, *prompt, model.sep_id] + [target[j] for j in sorted(kept)]
            x, n_real = torch.tensor([seq]), torch.tensor([len(seq)])
            with torch.no_grad():
                h = model.trunk(x, n_real, torch.tensor([first]))
                logits = model.insertion_logits(h, torch.tensor([first]), n_real)[0].double()  # (W, V)
                s = model.stop_head(h[:, 0]).squeeze().double()
            states[kept] = (F.logsigmoid(s), F.logsigmoid(-s), logits.flatten().log_softmax(-1).view_as(logits))
        return states[kept]

    def action(kept: frozenset, j: int) -> tuple[int, int]:  # insert target position j: (gap slot, token)
        return first + sum(i < j for i in kept), target[j]

    def step(kept: frozenset) -> tuple[float, float]:  # -> E[-log p(next step)], H(q) of the (gap, token) target
        log_stop, log_cont, logp = state(kept)
        acts = [action(kept, j) for j in range(L) if j not in kept]
        if not acts:
            return -float(log_stop), 0.0
        ce = -sum(float(logp[a]) for a in acts) / len(acts)
        q = [c / len(acts) for c in Counter(acts).values()]
        return -float(log_cont) + ce, -sum(p * math.log(p) for p in q)

    paths, seen = [], set()
    for order in permutations(range(L)):
        kept, lp, acts = frozenset(), 0.0, []
        for j in order:
            _, log_cont, logp = state(kept)
            acts.append(action(kept, j))
            lp = lp + log_cont + logp[acts[-1]]
            kept = kept | {j}
        paths.append(lp + state(kept)[0])
        seen.add(tuple(acts))
    assert len(seen) == math.factorial(L)  # every order is its own path: the premise of the bound
    path_nll, entropy = 0.0, 0.0
    for k in range(L + 1):
        costs = [step(frozenset(kept)) for kept in combinations(range(L), k)]
        path_nll += sum(c for c, _ in costs) / len(costs)
        entropy += sum(e for _, e in costs) / len(costs)
    return {"exact": -float(torch.logsumexp(torch.stack(paths), 0)), "bound": path_nll - math.lgamma(L + 1),
            "old": path_nll - entropy, "step": lambda kept: step(frozenset(kept))[0]}


def tiny_ilm(seed: int = 0) -> Model:
    torch.manual_seed(seed)
    return Model(Config(vocab_size=12, pad_id=0, bos_id=1, eos_id=2, mask_id=3, block_size=8, max_prompt_len=2,
                        max_target_len=4, n_layer=1, n_head=2, n_embd=16)).eval()


ROW = ([5, 6], [7, 8, 8, 9])  # prompt, target: L = 4 with a repeated adjacent token, as star paths u v v w


@pytest.mark.parametrize('trained', [False, True])
def test_nll_bound_against_exact_enumeration(trained):
    """The bound holds and is near the exact NLL, the forward's estimate is unbiased for it, and the old
    entropy-of-q bound was looser on this repeated-token row."""
    prompt, target = ROW
    L = len(target)
    tokens = torch.tensor([prompt + target] * 32)
    prompt_lens = torch.full((32,), len(prompt))
    model = tiny_ilm()
    if trained:  # 400 steps on this one row: the model now prefers it (at 150 steps it was mid-way and the gap
        #          depended on float noise: 0.03-0.28 over init seeds; at 400, 0.01-0.06 for seeds 0-3)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        for i in range(400):
            loss, _ = model(model.collate(tokens, prompt_lens, torch.Generator().manual_seed(i)))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
    r = enumerate_row(model, prompt, target)
    assert r["bound"] >= r["exact"] - 1e-6  # Jensen
    assert r["bound"] - r["exact"] < 0.1  # and near it (measured: 0.009 at init, 0.04 trained)
    if trained:
        assert r["exact"] < 0.5 * enumerate_row(tiny_ilm(), prompt, target)["exact"]  # it learned the row
    # the old bound subtracted the entropy of the (gap, token) targets, where the two 8s merge: less than
    # log 4! by log 2! (data only, any model). On star_easy (3 such pairs) that was 3 log 2 per row
    assert math.isclose(r["old"] - r["bound"], math.log(2), abs_tol=1e-9)
    # forward()'s nll on collated copies: per row (L+1) example_loss - log L!, over L+1 units per row
    batch = model.collate(tokens, prompt_lens, torch.Generator().manual_seed(123))
    _, metrics = model(batch)
    kept = [[j for j in range(L) if batch['gap'][b, len(prompt) + j] < 0] for b in range(32)]
    expected = sum((L + 1) * r["step"](k) - math.lgamma(L + 1) for k in kept) / (32 * (L + 1))
    assert metrics['nll_tokens'] == 32 * (L + 1) and math.isclose(metrics['nll'], expected, rel_tol=1e-4)
    assert Model.nll_kind == "bound"


def test_unconditional_and_stream_batches_train():
    tokens, prompt_lens = unconditional_rows()
    model = Model(Config(vocab_size=16, pad_id=0, bos_id=1, eos_id=2, mask_id=3, block_size=7, n_layer=1,
                         n_head=2, n_embd=16))
    loss, _ = model(model.collate(tokens, prompt_lens))
    loss.backward()
    assert torch.isfinite(loss)
    # stream windows: no pad, no mask, bos == eos (GPT-2 style)
    stream = Model(Config(vocab_size=50, pad_id=None, bos_id=49, eos_id=49, block_size=12, n_layer=1, n_head=2,
                          n_embd=16))
    windows = torch.randint(0, 50, (4, 12))
    batch = stream.collate(windows, torch.zeros(4, dtype=torch.long))
    loss, _ = stream(batch)
    assert torch.isfinite(loss)
    out = stream.generate(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long), 12)
    assert out.shape == (4, 12) and (out < 50).all()


# ----------------------------------------------------------------------------- overfit through train.py
def write_rows(d: str, rows: list[list[int]], prompt_lens: list[int], vocab_size: int):
    """A hand-made rows dataset (data/FORMAT.md): the same rows in every split."""
    os.makedirs(d, exist_ok=True)
    W = max(map(len, rows))
    arr = np.zeros((len(rows), W), dtype=np.uint16)
    for i, r in enumerate(rows):
        arr[i, :len(r)] = r
    for split in ('train', 'val', 'test'):
        arr.tofile(os.path.join(d, f'{split}.bin'))
        np.array(prompt_lens, dtype=np.uint16).tofile(os.path.join(d, f'{split}_prompt_len.bin'))
    meta = dict(format_version=1, name='toy', layout='rows', vocab_size=vocab_size, dtype='uint16', pad=0, bos=1,
                eos=2, mask=3, itos=['<pad>', '<bos>', '<eos>', '<mask>'] + [str(i) for i in range(vocab_size - 4)],
                row_width=W, max_prompt_len=max(prompt_lens),
                max_target_len=max(len(r) - p for r, p in zip(rows, prompt_lens)),
                splits={s: {'rows': len(rows), 'tokens': int((arr > 0).sum())} for s in ('train', 'val', 'test')})
    with open(os.path.join(d, 'meta.json'), 'w') as f:
        json.dump(meta, f)


TOY = ([[11, 10, 12, 4, 4, 4, 6], [10, 14, 9, 13, 11, 10, 15], [6, 4, 11, 12, 4, 13, 12], [4, 14, 5, 11, 7, 9, 9, 8]],
       [3, 5, 4, 4])  # 4 problems: prompts of 3-5 tokens, targets of 2-4 with repeats (4 4 4, 9 9)


@pytest.fixture(scope='module')
def overfit(tmp_path_factory):
    """train.py on one fixed batch of 32 rows, which are the 4 TOY problems repeated (each seen with ~8
    drop patterns per step: an ILM must learn every insertion state, not one sequence, so a star batch
    takes thousands of steps; these targets take ~150)."""
    d = str(tmp_path_factory.mktemp('toy'))
    write_rows(d, *TOY, vocab_size=16)
    out = str(tmp_path_factory.mktemp('ilm_overfit'))
    argv = ['--model=ilm', f'--dataset={d}', f'--out_dir={out}', '--overfit_batches=1', '--batch_size=32',
            '--max_iters=300', '--eval_interval=300', '--eval_examples=4', '--eval_gen_examples=0',
            '--log_interval=10', '--learning_rate=3e-3', '--min_lr=3e-4', '--warmup_iters=10', '--n_layer=2',
            '--n_head=2', '--n_embd=32', '--weight_decay=0.0', '--device=cpu', '--seed=1337']
    train.main(argv)
    return out, trained_model(out), Dataset(d, 'train')


def test_overfit_loss_falls_and_sampler_reproduces_targets(overfit):
    out, model, data = overfit
    with open(os.path.join(out, 'log.jsonl')) as f:
        losses = [r['loss'] for r in map(json.loads, f) if 'loss' in r]
    # the floor is the entropy of the insertion order (several right answers per state), not 0
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:2])
    tokens, prompt_lens = data.get(np.arange(data.n_items))
    prompt, truth = data.split_prompt_target(tokens, prompt_lens)
    pred = model.generate(prompt.clamp(min=0), prompt_lens, max_new_tokens=data.meta['max_target_len'],
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(pred[:, :truth.size(1)], truth) and (pred[:, truth.size(1):] == -1).all(), f"{pred}\n{truth}"


@pytest.mark.parametrize('which', ['overfit', 'random', 'random_mix'])
def test_batched_equals_one_by_one_and_output_is_clean(which, overfit, medium):
    """The overfit model stops rows at different steps (the batch shrinks); the untrained one on star_medium
    runs every row to the limit with prompts of different lengths (padding in the batch); random_mix: with
    neighbour_mix and abs_pos, whose inputs must not depend on how far a row is padded."""
    if which == 'overfit':
        _, model, data = overfit
    else:
        data = Dataset(medium, 'train')
        mix = which == 'random_mix'
        model = star_model(data.meta, neighbour_mix=mix, abs_pos=mix).eval()
        if mix:  # a mix large enough that a pad embedding leaking in as a neighbour changes the argmax
            for lin in (model.mix_left, model.mix_right):
                torch.nn.init.normal_(lin.weight, std=1.0)
    tokens, prompt_lens = data.get(np.arange(min(8, data.n_items)))
    prompt, _ = data.split_prompt_target(tokens, prompt_lens)
    prompt = prompt.clamp(min=0)
    max_new = data.meta['max_target_len']
    batched, steps = model.generate(prompt, prompt_lens, max_new_tokens=max_new, history=True)
    for i in range(len(tokens)):
        P = int(prompt_lens[i])
        single = model.generate(prompt[i:i + 1, :P], prompt_lens[i:i + 1], max_new_tokens=max_new)
        assert torch.equal(single[0], batched[i])
    short = model.generate(prompt, prompt_lens, max_new_tokens=3)
    for out in (batched, short):
        real = out >= 0
        assert not torch.isin(out, torch.tensor([data.meta['pad'], data.meta['mask']])).any()
        assert torch.equal(real, real.long().cumprod(1).bool())  # -1 only after the end
    # the length limit: each row is what the longer run had after 3 insertions (or its end, if sooner)
    assert len(steps) >= 3 and torch.equal(short, steps[2])


def test_history_and_unconditional_generation(overfit):
    _, model, data = overfit
    tokens, prompt_lens = data.get(np.arange(4))
    prompt, _ = data.split_prompt_target(tokens, prompt_lens)
    out, steps = model.generate(prompt.clamp(min=0), prompt_lens, max_new_tokens=10, history=True)
    assert len(steps) >= 1 and all(s.shape == (4, t + 1) for t, s in enumerate(steps))
    assert torch.equal(steps[-1], out[:, :len(steps)])
    empty = torch.zeros(3, 0, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    model.config.temperature, model.config.two_stage = 1.0, False  # sampled, joint over (gap, token)
    try:
        un = model.generate(empty, torch.zeros(3, dtype=torch.long), max_new_tokens=5, generator=g)
    finally:
        model.config.temperature, model.config.two_stage = 0.0, True
    assert un.shape == (3, 5)
    assert not torch.isin(un, torch.tensor([data.meta['pad'], data.meta['mask']])).any()


# ----------------------------------------------------------------------------- sampling options
def test_pick_truncation_at_temperature_zero():
    """Temperature 0 is the argmax, unless top_k (top_p) narrows the choice: then a draw at temperature 1
    among the kept ones, in proportion to their probabilities (XLM's sample_top_k)."""
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05]]))
    g = torch.Generator().manual_seed(0)
    assert all(ilm.pick(logits, 0.0, 0, 1.0, g).item() == 1 for _ in range(20))  # greedy
    assert all(ilm.pick(logits, 0.0, 1, 1.0, g).item() == 1 for _ in range(20))  # top 1 = greedy
    draws = torch.stack([ilm.pick(logits, 0.0, 2, 1.0, g) for _ in range(4000)]).squeeze(1)
    assert set(draws.tolist()) == {1, 3} and abs((draws == 3).float().mean() - 0.3 / 0.8) < 0.03
    draws = torch.stack([ilm.pick(logits, 0.0, 0, 0.7, g) for _ in range(4000)]).squeeze(1)  # 0.5 + 0.3 >= 0.7
    assert set(draws.tolist()) == {1, 3} and abs((draws == 3).float().mean() - 0.3 / 0.8) < 0.03
    draws = torch.stack([ilm.pick(logits, 1.0, 0, 0.55, g) for _ in range(200)]).squeeze(1)  # 0.5 + 0.3 >= 0.55
    assert set(draws.tolist()) == {1, 3}
    assert (ilm.pick(logits.expand(50, 5), 1.0, 0, 1e-9, g) == 1).all()  # a tiny nucleus is greedy


def test_gap_top_k_samples_among_the_two_likeliest_gaps(medium, monkeypatch):
    """gap_top_k=2 at gap_temperature 0 (XLM's star setting) changes the outputs over seeds, and every gap
    it picks is one of the two likeliest; without it the sampler is greedy (the same for every seed)."""
    data = Dataset(medium, 'train')
    model = star_model(data.meta, gap_top_k=2).eval()
    tokens, prompt_lens = data.get(np.arange(8))
    prompt, _ = data.split_prompt_target(tokens, prompt_lens)
    prompt = prompt.clamp(min=0)
    real_pick, gaps = ilm.pick, []

    def spy(logits, temperature, top_k, top_p, generator=None):
        out = real_pick(logits, temperature, top_k, top_p, generator)
        if top_k == 2:  # the gap stage (tokens: top_k 0)
            gaps.append((out, logits.topk(2, dim=-1).indices))
        return out
    monkeypatch.setattr(ilm, 'pick', spy)
    sampled = [model.generate(prompt, prompt_lens, 6, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    model.config.gap_top_k = 0
    greedy = [model.generate(prompt, prompt_lens, 6, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    assert all(torch.equal(g, greedy[0]) for g in greedy)
    assert all(not torch.equal(s, greedy[0]) for s in sampled) and not torch.equal(sampled[0], sampled[1])
    assert len(gaps) == 4 * 6 and all((top == out[:, None]).any(1).all() for out, top in gaps)
    assert any((out != top[:, 0]).any() for out, top in gaps)  # the second likeliest is taken too


def test_top_p_extremes_through_generate(medium):
    """At temperature 1: a tiny top_p keeps only the likeliest token (the greedy output, with greedy gaps);
    top_p just under 1 keeps every token here, so it draws exactly what no top_p draws with the same seed."""
    data = Dataset(medium, 'train')
    model = star_model(data.meta).eval()
    tokens, prompt_lens = data.get(np.arange(8))
    prompt, _ = data.split_prompt_target(tokens, prompt_lens)
    prompt = prompt.clamp(min=0)

    def run(**kw):
        for k, v in kw.items():
            setattr(model.config, k, v)
        return model.generate(prompt, prompt_lens, 6, generator=torch.Generator().manual_seed(0))
    greedy = run(temperature=0.0, top_p=1.0)
    assert torch.equal(run(temperature=1.0, top_p=1e-9), greedy)
    full = run(temperature=1.0, top_p=1.0)
    assert not torch.equal(full, greedy) and torch.equal(run(temperature=1.0, top_p=1 - 1e-6), full)
    model.config.two_stage = False  # the joint (gap, token) draw too
    assert torch.equal(run(temperature=1.0, top_p=1e-9), run(temperature=0.0, top_p=1.0))


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    check_resume(train.main, "ilm", star_data(), tiny, tmp_path)
