"""The unpadded trunks (ILM, MDLM, MLM, FlexMDM, Edit Flows run everything but attention on the real positions
only, packed): a row's hidden states are the same alone as in a batch of longer rows, padding comes out as
zeros, and what the padding holds changes nothing."""
import importlib

import pytest
import torch

from rows import small_model

N_REAL = [7, 12, 9]  # real positions of three rows; the batch is padded to 12
W = max(N_REAL)


def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(4, 24, (len(N_REAL), W), generator=g)
    keep = torch.arange(W)[None, :] < torch.tensor(N_REAL)[:, None]  # (B, W)
    return x.masked_fill(~keep, 0), keep  # padding holds id 0


# each model's trunk(ids, real-positions, times) through its own signature
def run_ilm(m, x, keep, t):  # every slot a gap (first_gap 0): every output read
    return m.trunk(x, keep.sum(1), torch.zeros(len(x), dtype=torch.long))


def run_mdlm(m, x, keep, t):
    return m.trunk(x, None if bool(keep.all()) else keep, t)


def run_mlm(m, x, keep, t):
    return m.trunk(x, None if bool(keep.all()) else keep)


def run_timed(m, x, keep, t):  # flexmdm, editflow
    return m.trunk(x, keep.sum(1), t)


CASES = [("ilm", {}, run_ilm), ("mdlm", {}, run_mdlm), ("mdlm", {"time_cond": True}, run_mdlm),
         ("mlm", {}, run_mlm), ("flexmdm", {}, run_timed), ("editflow", {}, run_timed)]


@pytest.mark.parametrize("name,kw,run", CASES, ids=[f"{c[0]}{'_time' if c[1] else ''}" for c in CASES])
def test_padding_is_invisible(name, kw, run):
    m = small_model(importlib.import_module(f"models.{name}"), **kw)
    with torch.no_grad():
        for p in m.parameters():  # off the zero-initialised gates, so every path carries signal
            p.add_(0.05 * torch.randn_like(p))
    x, keep = batch()
    t = torch.tensor([0.3, 0.6, 0.9])
    h = run(m, x, keep, t)  # (B, W, C)
    assert h.shape[:2] == x.shape
    assert torch.equal(h[~keep], torch.zeros_like(h[~keep]))  # padding comes out as zeros
    for i, n in enumerate(N_REAL):  # each row alone, unpadded, gives its hidden states in the batch
        alone = run(m, x[i:i + 1, :n], keep[i:i + 1, :n], t[i:i + 1])
        assert torch.allclose(h[i, :n], alone[0], atol=1e-5), (name, i)
    h_other_ids = run(m, x.masked_fill(~keep, 5), keep, t)  # what the padding holds changes nothing
    assert torch.equal(h, h_other_ids)


def test_ilm_last_block_runs_only_where_outputs_are_read():
    """ILM's trunk computes the last block's outputs at CLS and the gaps only: there they equal the full
    computation's (every slot read), elsewhere (the prompt) they are zero."""
    m = small_model(importlib.import_module("models.ilm"))
    x, keep = batch()
    first_gap = torch.tensor([3, 5, 2])
    full = m.trunk(x, keep.sum(1), torch.zeros(3, dtype=torch.long))
    part = m.trunk(x, keep.sum(1), first_gap)
    s = torch.arange(W)[None, :]
    read = keep & ((s == 0) | (s >= first_gap[:, None]))
    assert torch.allclose(part[read], full[read], atol=1e-5)
    assert torch.equal(part[~read], torch.zeros_like(part[~read]))
    assert 0 < int(read.sum()) < int(keep.sum())  # the case is not trivial


@pytest.mark.parametrize("name,kw", [("mlm", {}), ("mdlm", {}), ("mdlm", {"time_cond": True})],
                         ids=["mlm", "mdlm", "mdlm_time"])
def test_canvas_trunk_runs_the_last_block_only_at_the_canvas(name, kw):
    """MLM's and MDLM's trunk with the canvas columns gives, there, what the full computation gives (with and
    without padding in the batch); the last block then never runs at the prompt."""
    m = small_model(importlib.import_module(f"models.{name}"), **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, keep = batch()
    t = torch.tensor([0.3, 0.6, 0.9])
    cidx = torch.stack([torch.arange(n - 4, n) for n in N_REAL])  # (B, 4): each row's last 4 positions
    args = (t,) if name == "mdlm" else ()
    for k in (keep, None):  # padded batch, and (as if) none: every position real
        full = m.trunk(x, k, *args)  # (B, W, C)
        part = m.trunk(x, k, *args, cidx=cidx)  # (B, 4, C)
        assert torch.allclose(part, full.gather(1, cidx[:, :, None].expand(-1, -1, full.size(-1))), atol=1e-5)


def test_arlm_trunk_reads_only_where_asked():
    """ARLM's trunk with read= gives, at those positions, what the full computation gives there."""
    m = small_model(importlib.import_module("models.arlm"))
    x, keep = batch()
    pos = torch.arange(W)[None, :]
    read = keep & (torch.arange(W)[None, :] >= 5)  # as targets after a 5-token prompt
    full = m.trunk(x, pos)  # (B, W, C)
    part = m.trunk(x, pos, read=read)  # (M, C)
    assert part.shape == (int(read.sum()), full.size(-1))
    assert torch.allclose(part, full[read], atol=1e-5)


@pytest.mark.parametrize("name", ["flexmdm", "editflow"])
def test_timed_trunk_runs_the_last_block_only_from_start(name):
    """FlexMDM's and Edit Flows' trunk with start (the first slot after the prompt) gives, from there on, what
    the full computation gives, and zero before it."""
    m = small_model(importlib.import_module(f"models.{name}"))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, keep = batch()
    t, start = torch.tensor([0.3, 0.6, 0.9]), torch.tensor([3, 5, 2])
    full = m.trunk(x, keep.sum(1), t)
    part = m.trunk(x, keep.sum(1), t, start)
    read = keep & (torch.arange(W)[None, :] >= start[:, None])
    assert torch.allclose(part[read], full[read], atol=1e-5)
    assert torch.equal(part[~read], torch.zeros_like(part[~read]))
