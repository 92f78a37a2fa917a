"""Curriculum: a phase changes the data training batches come from (train_data: one folder or a weighted mix of
folders of one vocabulary), and --init_from grows a model into data with more tokens. Both resume exactly.

    python -m pytest tests/test_curriculum.py -q
"""
import json
import os
import signal

import numpy as np
import pytest
import torch

import train
from data.loader import Dataset, Mixture, NanoError
import engine
from engine import build_model, data_keys, model_defaults
from conftest import TINY


def log(out_dir: str) -> list[dict]:
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def ckpt(out_dir: str) -> dict:
    return torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)


@pytest.fixture(scope="module")
def star56(star_data):
    """Three tasks over star_hard's 60-token vocabulary: easy's shape (rows <= 34 wide), medium's (<= 42), hard."""
    return {task: star_data(task, n_train=512) for task in ("easy_n56", "medium_n56", "hard")}


def test_a_mixture_draws_by_weight_and_pads_to_the_widest_row(star56):
    easy, hard = Dataset(star56["easy_n56"], "train"), Dataset(star56["hard"], "train")
    mix = Mixture([easy, hard], [1.0, 3.0])
    items = mix.draw(4000, torch.Generator().manual_seed(0))
    assert abs(items[:, 0].mean() - 0.75) < 0.03  # hard drawn 3 times in 4
    assert (items[:, 1] < np.where(items[:, 0] == 0, easy.n_items, hard.n_items)).all()
    tokens, prompt_lens = mix.get(items[:64])
    for row, (d, i) in enumerate(items[:64]):
        alone, plen = (easy, hard)[d].get(np.array([i]))
        assert torch.equal(tokens[row, :alone.shape[1]], alone[0]) and (tokens[row, alone.shape[1]:] == 0).all()
        assert prompt_lens[row] == plen[0]


def test_a_curriculum_trains_on_each_phases_data_and_resumes_exactly(star56, tmp_path, monkeypatch):
    """Steps before the phase at 4 see only easy-shaped rows (<= 34 wide), later steps the medium/hard mix; a run
    stopped at step 5 (SIGTERM) and resumed equals the run in one go, losses and weights."""
    phases = [dict(start=4, train_data=f"{star56['medium_n56']}:1,{star56['hard']}:3")]
    args = [*TINY, f"--dataset={star56['hard']}", f"--train_data={star56['easy_n56']}", "--max_iters=8",
            "--eval_interval=4", f"--phases={phases!r}"]
    widths, real_loss = {}, train.noised_loss

    def noised_loss(model, raw_model, tokens, *a):
        widths.setdefault(len(widths), tokens.shape[1])
        return real_loss(model, raw_model, tokens, *a)
    monkeypatch.setattr(train, "noised_loss", noised_loss)
    full = str(tmp_path / "full")
    train.main([*args, f"--out_dir={full}"])
    monkeypatch.undo()
    assert max(widths[s] for s in range(4)) <= 34 and max(widths[s] for s in range(4, 8)) > 42, widths
    assert log(full)[0]["config"]["block_size"] == 134  # the model is built for hard's rows

    real_items = train.batch_items

    def preempt(data, P, step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # finishes step 5, saves and returns
        return real_items(data, P, step)
    monkeypatch.setattr(train, "batch_items", preempt)
    stopped = str(tmp_path / "stopped")
    assert train.main([*args, f"--out_dir={stopped}"])["step"] == 5
    monkeypatch.undo()
    train.main([*args, f"--out_dir={stopped}", "--resume"])
    losses = lambda out: [r["loss"] for r in log(out) if "loss" in r]  # noqa: E731
    assert losses(stopped) == losses(full)
    a, b = ckpt(full), ckpt(stopped)
    assert a["step"] == b["step"] == 8 and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_the_model_is_built_for_the_longest_rows_any_phase_trains_on(star56, tmp_path):
    out = str(tmp_path / "run")
    train.main([*TINY, f"--dataset={star56['easy_n56']}", "--max_iters=2", f"--out_dir={out}",
                f"--phases=[{{'start': 1, 'train_data': '{star56['hard']}'}}]"])
    assert log(out)[0]["config"]["block_size"] == 134 and log(out)[0]["config"]["max_target_len"] == 22


@pytest.mark.parametrize("spec, message", [
    ("{hard}:x", r".*: the weight 'x' of .* must be a number > 0"),
    ("{hard}:0", r".*: the weight '0' of .* must be a number > 0"),
    ("{hard}:1,{hard}:-2", r".*: the weight '-2'"),
    ("{hard}:nan", r".*: the weight 'nan'"),
    ("{root}/no_such", r".*: .*no_such/meta.json not found"),
    ("{easy24}", r".*: .* has another vocabulary or layout than dataset="),
])
@pytest.mark.parametrize("where", ["train_data", "phases[0].train_data"])
def test_train_data_that_cannot_work_is_one_line(star56, star_data, tmp_path, spec, message, where):
    spec = spec.format(hard=star56["hard"], root=tmp_path, easy24=star_data())
    out = str(tmp_path / "run")
    given = [f"--train_data={spec}"] if where == "train_data" else [f"--phases=[{{'start': 1, 'train_data': {spec!r}}}]"]
    with pytest.raises(NanoError, match=rf"^{where.replace('[', '.').replace(']', '.')}={message}"):
        train.main([*TINY, f"--dataset={star56['hard']}", "--max_iters=2", f"--out_dir={out}", *given])
    assert not os.path.exists(out)  # refused before out_dir was made


def test_grown_keeps_every_token_and_position_and_moves_the_models_own_ids(star_data, star56):
    """ILM on star_easy (24 tokens + its CLS and SEP at 24, 25) grown into star_hard's 60 tokens (CLS, SEP at 60,
    61) and longer rows: old rows where they belong, fresh ones elsewhere."""
    def ilm(data: str):
        meta = Dataset(data, "train").meta
        torch.manual_seed(0)
        return build_model("ilm", {**model_defaults({"model": "ilm"}), "abs_pos": True, **data_keys(meta, {})})
    old, new = ilm(star_data()), ilm(star56["hard"])
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    new.load_state_dict(engine.grown(old.state_dict(), new, 24, 60))
    got, was = new.state_dict(), old.state_dict()
    for k in ("wte.weight", "head.weight"):
        assert torch.equal(got[k][:24], was[k][:24]) and torch.equal(got[k][60:], was[k][24:])
        assert torch.equal(got[k][24:60], fresh[k][24:60])
    n = was["wpe.weight"].shape[0]
    assert got["wpe.weight"].shape[0] > n and torch.equal(got["wpe.weight"][:n], was["wpe.weight"])
    assert torch.equal(got["wpe.weight"][n:], fresh["wpe.weight"][n:])
    same = [k for k in was if was[k].shape == got[k].shape]
    assert same and all(torch.equal(got[k], was[k]) for k in same)


def test_init_from_grows_a_model_into_data_with_more_tokens_and_resumes(star_data, star56, tmp_path):
    small = str(tmp_path / "small")
    train.main([*TINY, "--model=ilm", f"--dataset={star_data()}", "--max_iters=2", f"--out_dir={small}"])
    big, args = str(tmp_path / "big"), [*TINY, "--model=ilm", f"--dataset={star56['hard']}",
                                        f"--init_from={small}/ckpt.pt", "--eval_interval=2"]
    assert train.main([*args, "--max_iters=2", f"--out_dir={big}"])["step"] == 2
    assert ckpt(big)["model"]["wte.weight"].shape[0] == 62
    assert train.main([*args, "--max_iters=4", f"--out_dir={big}", "--resume"])["step"] == 4
    with pytest.raises(NanoError, match="does not extend it"):  # star_easy's 24 tokens cannot shrink back
        train.main([*TINY, "--model=ilm", f"--dataset={star_data()}", f"--init_from={big}/ckpt.pt",
                    "--max_iters=2", f"--out_dir={tmp_path / 'back'}"])
