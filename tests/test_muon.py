"""optimizer='muon' (engine.Muon for the blocks' matrices, AdamW for the rest): the update is what Muon says,
the split is the one described, a run learns and resumes exactly.

    python -m pytest tests/test_muon.py -q
"""
import json
import os
from types import SimpleNamespace

import torch

import engine
import train


def losses(out_dir: str) -> list[float]:
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def test_one_muon_step_is_the_orthogonalised_nesterov_momentum():
    torch.manual_seed(0)
    for rows, cols in ((8, 5), (5, 8)):
        p = torch.nn.Parameter(torch.randn(rows, cols))
        w0 = p.detach().clone()
        g = torch.randn(rows, cols)
        p.grad = g.clone()
        opt = engine.Muon([p], lr=0.1, weight_decay=0.5, momentum=0.9, ns_steps=5)
        opt.step()
        m = 0.1 * g  # the momentum buffer after one step: 0.9 * 0 + 0.1 g
        update = 0.1 * g + 0.9 * m  # Nesterov
        U, S, Vh = torch.linalg.svd(update, full_matrices=False)
        step = (w0 * (1 - 0.1 * 0.5) - p.detach()) / (0.1 * 0.2 * max(rows, cols) ** 0.5)  # the NS output
        # Newton-Schulz's quintic gives U S' V^T with S' in about [0.7, 1.2], not exactly U V^T: the singular
        # vectors are those of the update, the singular values near 1
        Ss = torch.linalg.svdvals(step)
        assert 0.6 < Ss.min() and Ss.max() < 1.25, Ss
        assert torch.allclose(U.T @ step @ Vh.T, torch.diag(torch.diagonal(U.T @ step @ Vh.T)), atol=1e-4)


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    model = engine.build_model("ilm", {**engine.model_defaults({"model": "ilm"}), "vocab_size": 24})
    C = SimpleNamespace(optimizer="muon", learning_rate=1e-3, weight_decay=0.1, beta1=0.9, beta2=0.99)
    opt = engine.make_optimizer(model, C, fused=False)
    adamw, muon = opt.parts
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    in_adamw = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert in_muon and all(n.startswith("blocks.") and n.endswith(".weight") for n in in_muon)
    assert {"wte.weight", "head.weight"} <= in_adamw and not in_muon & in_adamw
    assert in_muon | in_adamw == set(names.values())
    C.optimizer = "adamw"
    assert isinstance(engine.make_optimizer(model, C, fused=False), torch.optim.AdamW)


def test_a_muon_run_learns_and_resumes_exactly(star_data, tiny, tmp_path):
    common = [f"--dataset={star_data()}", "--optimizer=muon", "--learning_rate=3e-3", "--eval_interval=20",
              "--lr_schedule=constant", "--ema_decay=0.9", *tiny]
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    train.main(common + [f"--out_dir={full}", "--max_iters=40"])
    curve = losses(full)
    assert sum(curve[-10:]) / 10 < sum(curve[:10]) / 10 - 0.3  # it learns
    train.main(common + [f"--out_dir={split}", "--max_iters=20"])
    train.main(common + [f"--out_dir={split}", "--max_iters=40", "--resume"])
    assert losses(full) == losses(split)
    a = torch.load(os.path.join(full, "ckpt.pt"), weights_only=True)
    b = torch.load(os.path.join(split, "ckpt.pt"), weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert any(len(g["params"]) and "momentum" in g for g in a["optimizer"]["param_groups"])  # Muon's state saved


def test_an_adamw_checkpoint_does_not_resume_as_muon(star_data, tiny, tmp_path):
    out = str(tmp_path / "run")
    common = [f"--dataset={star_data()}", f"--out_dir={out}", *tiny]
    train.main(common + ["--max_iters=5", "--eval_interval=5"])
    try:
        train.main(common + ["--max_iters=10", "--resume", "--optimizer=muon"])
    except Exception as e:  # NanoError: one line naming the optimizer state
        assert "optimizer" in str(e), e
    else:
        raise AssertionError("an AdamW run resumed with Muon")
