"""
The one NLL unit every model reports (models/README.md): the NLL of a row's target tokens plus one
end-of-sequence event, divided by (target tokens + 1); a leading bos of an unconditional row is context and
a trailing data eos is the end, not a target token; a stream window has no end, so each predicted token is
one unit. Checked on hand-made rows of every shape the data can have, for every model; then that ARLM's
number is the exact NLL of the tokens and their end, that MDLM scores the end in its numerator, and ARLM's
sampling options (ARLM has no test file of its own; the engine tests cover its training). CPU, seconds.

    python -m pytest tests/test_nll_unit.py -q
"""
import importlib
import math

import pytest
import torch
import torch.nn.functional as F

from models import arlm, mdlm, mlm
from rows import MODELS, STAR, star_rows  # tests/rows.py

WITH_NLL = [m for m in MODELS if importlib.import_module(f"models.{m}").Model.nll_kind != "none"]

NET = dict(n_layer=1, n_head=2, n_embd=16)
IDS = dict(vocab_size=16, pad_id=0, bos_id=1, eos_id=2, mask_id=3)
GPT2_LIKE = dict(vocab_size=16, pad_id=15, bos_id=14, eos_id=14, mask_id=None)  # bos == eos, as LM1B rows


def rows(*rs: list[int], pad: int) -> torch.Tensor:
    W = max(map(len, rs))
    return torch.tensor([r + [pad] * (W - len(r)) for r in rs])


def star_case():
    """Prompt/target rows (no eos in the data, as star graphs), targets of 8, 8, 6 and 3 tokens."""
    tokens, pl = star_rows(4, [26, 26, 20, 12], [8, 8, 6, 3])
    keys = dict(STAR, block_size=34, max_prompt_len=26, max_target_len=8)
    return keys, tokens, pl, (8 + 1) + (8 + 1) + (6 + 1) + (3 + 1)


def unconditional_case():
    """bos w1..wn eos pad rows (LM1B-style), an empty sentence (bos eos), and a row with neither bos nor eos."""
    tokens = rows([1, 5, 6, 7, 2], [1, 2], [1, 8, 9, 10, 11, 2], [5, 6], pad=0)
    keys = dict(IDS, block_size=6)
    return keys, tokens, torch.zeros(4, dtype=torch.long), (3 + 1) + (0 + 1) + (4 + 1) + (2 + 1)


def gpt2_like_case():
    """bos == eos (GPT-2's <|endoftext|>): the first is context, the last is the end, and a lone bos is no eos."""
    tokens = rows([14, 5, 6, 14], [14, 14], [14, 7, 8, 9, 10, 14], [14], pad=15)
    keys = dict(GPT2_LIKE, block_size=6)
    return keys, tokens, torch.zeros(4, dtype=torch.long), (2 + 1) + (0 + 1) + (4 + 1) + (0 + 1)


def stream_case(first_is_context: bool):
    """Stream windows: no pad, no end; every predicted token is a unit (ARLM cannot predict a window's first)."""
    tokens = torch.randint(0, 13, (3, 12), generator=torch.Generator().manual_seed(0))  # never bos (= eos = 13)
    keys = dict(vocab_size=14, pad_id=None, bos_id=13, eos_id=13, mask_id=None, block_size=12)
    return keys, tokens, torch.zeros(3, dtype=torch.long), 3 * (11 if first_is_context else 12)


CASES = {"star": star_case, "unconditional": unconditional_case, "gpt2_like": gpt2_like_case}


def build(module, keys: dict, **kw):
    torch.manual_seed(0)
    return module.Model(module.Config(**keys, **NET, **kw)).eval()


@pytest.mark.parametrize("case", [*CASES, "stream"])
@pytest.mark.parametrize("name", WITH_NLL)
def test_nll_tokens_are_target_tokens_plus_one_per_row(name, case):
    module = importlib.import_module(f"models.{name}")
    # an exact (autoregressive) model cannot predict a window's first token; the others predict every one
    first_is_context = module.Model.nll_kind == "exact"
    keys, tokens, pl, units = stream_case(first_is_context) if case == "stream" else CASES[case]()
    model = build(module, keys)
    loss, metrics = model(model.collate(tokens, pl, torch.Generator().manual_seed(0)))
    assert metrics["nll_tokens"] == units
    assert math.isfinite(metrics["nll"]) and metrics["nll"] > 0
    if metrics["n_tokens"] == units:  # a loss per unit (all but ILM's, a mean over rows) is the NLL, the bound,
        assert metrics["nll"] <= loss  # or a looser bound (FlexMDM's: its nll is the aligned bound, tighter)


@pytest.mark.parametrize("case", [*CASES, "stream"])
def test_mlm_reports_no_nll(case):
    keys, tokens, pl, _ = stream_case(False) if case == "stream" else CASES[case]()
    model = build(mlm, keys)
    loss, metrics = model(model.collate(tokens, pl, torch.Generator().manual_seed(0)))
    assert "nll" not in metrics and "nll_tokens" not in metrics and metrics["n_tokens"] > 0


def test_nll_kind():
    kinds = {m: importlib.import_module(f"models.{m}").Model.nll_kind for m in MODELS}
    assert set(kinds.values()) <= {"exact", "bound", "none"}
    assert {m: kinds[m] for m in ("arlm", "mdlm", "ilm", "mlm")} == \
        {"arlm": "exact", "mdlm": "bound", "ilm": "bound", "mlm": "none"}
    assert len(MODELS) >= 5 and "flexmdm" in MODELS


@pytest.mark.parametrize("case", ["unconditional", "gpt2_like", "star"])
def test_arlm_nll_is_the_exact_nll_of_the_tokens_and_their_end(case):
    """Scored one prefix at a time: sum over the target tokens and the end (the data's eos, or an appended
    one) of -log p(token | bos or prompt, tokens before), over (target tokens + 1)."""
    keys, tokens, pl, units = CASES[case]()
    model = build(arlm, keys)
    _, metrics = model(model.collate(tokens, pl))
    pad, bos, eos = keys["pad_id"], keys["bos_id"], keys["eos_id"]
    total = 0.0
    for row, p in zip(tokens.tolist(), pl.tolist()):
        row = [t for t in row if t != pad]
        if p == 0 and row[:1] != [bos]:
            row = [bos] + row  # the context an unconditional row starts from
        if row[-1] != eos or len(row) <= max(p, 1):
            row = row + [eos]  # the end, unless the data wrote it
        for j in range(max(p, 1), len(row)):
            x = torch.tensor([row[:j]])
            logits = model.head(model.trunk(x, torch.arange(j)[None]))[0, -1]
            total -= F.log_softmax(logits.double(), -1)[row[j]].item()
    assert math.isclose(metrics["nll"].item() * units, total, rel_tol=1e-5)


def test_mdlm_scores_the_end_in_its_numerator():
    """Full-length star targets (8 = max_target_len): the canvas has 9 positions and the 9th, the pad that
    ends the target, is predicted like any token; fully masked at t = 1 the loss is the CE of all 9 over 9."""
    keys, tokens, pl, _ = star_case()
    tokens, pl = tokens[:2], pl[:2]  # the two rows with 8-token targets
    model = build(mdlm, keys)
    batch = model.collate(tokens, pl)
    assert batch["target"].shape == (2, 9) and (batch["target"][:, 8] == 0).all()
    xt = batch["xt"].scatter(1, batch["cidx"], model.mask_id)
    loss, metrics = model(dict(batch, xt=xt, t=torch.ones(2)))
    logits = model.canvas_logits(xt, batch["cidx"])
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["target"].reshape(-1), reduction="sum")
    assert metrics["nll_tokens"] == 2 * 9 and torch.allclose(loss, ce / 18)


# ----------------------------------------------------------------------------- ARLM sampling options
def arlm_model(**kw) -> arlm.Model:
    return build(arlm, dict(STAR, block_size=42, max_target_len=10), **kw)


def test_arlm_pick_top_p_and_top_k():
    """top_p keeps the smallest set with that much probability, top_k the k likeliest; at temperature 0 either
    one makes a draw at temperature 1 among the kept tokens (without them, temperature 0 is the argmax)."""
    m = arlm_model()
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)

    def draws(n: int, **kw) -> torch.Tensor:
        for k, v in dict(dict(temperature=1.0, top_k=0, top_p=1.0), **kw).items():
            setattr(m.config, k, v)
        return torch.cat([m.pick(logits, g) for _ in range(n)])
    assert set(draws(3000).tolist()) == {0, 1, 2, 3}
    d = draws(3000, top_p=0.55)  # 0.5 < 0.55 <= 0.5 + 0.3: keep {0, 1}
    assert set(d.tolist()) == {0, 1} and abs((d == 1).float().mean() - 0.3 / 0.8) < 0.03
    assert set(draws(200, top_p=0.5).tolist()) == {0}  # the mass before token 1 is already 0.5
    d = draws(3000, temperature=0.0, top_k=2)  # temperature 0 + top_k: a draw among the two best
    assert set(d.tolist()) == {0, 1} and abs((d == 1).float().mean() - 0.3 / 0.8) < 0.03
    assert set(draws(3000, temperature=0.0, top_p=0.9).tolist()) == {0, 1, 2}
    assert set(draws(50, temperature=0.0).tolist()) == {0}


def test_arlm_top_p_extremes_through_generate():
    """A tiny top_p is greedy; top_p just under 1 drops nothing here, so it draws exactly what no top_p
    draws with the same seed (the nucleus code runs, and changes nothing)."""
    m = arlm_model()
    tokens, pl = star_rows(6, [12, 30, 20, 30, 8, 16], [10, 4, 6, 8, 10, 2])
    prompt = tokens[:, :30]

    def run(**kw) -> torch.Tensor:
        for k, v in kw.items():
            setattr(m.config, k, v)
        return m.generate(prompt, pl, 10, generator=torch.Generator().manual_seed(0))
    greedy = run(temperature=0.0, top_p=1.0)
    assert torch.equal(run(temperature=1.0, top_p=1e-9), greedy)
    full = run(temperature=1.0, top_p=1.0)
    assert not torch.equal(full, greedy) and torch.equal(run(temperature=1.0, top_p=1 - 1e-6), full)
