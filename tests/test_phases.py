"""Phases: one run that changes batch size, LR schedule and EMA at given steps equals the same schedule
run as separate resumed commands (how the multi-phase recipes were first run), bit for bit.

    python -m pytest tests/test_phases.py -q
"""
import json
import os
import signal

import pytest
import torch

import train
from data.loader import NanoError


def state(out_dir: str) -> dict:
    return torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)


def losses(out_dir: str) -> list[float]:
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def test_one_run_with_phases_equals_resumed_commands(star_data, tiny, tmp_path):
    common = [f"--dataset={star_data()}", "--eval_interval=8", *tiny]  # tiny: batch 16, warmup 2
    # the old way: phase 1, then a resume that sets the next phase's keys on the command line
    old = str(tmp_path / "old")
    train.main(common + [f"--out_dir={old}", "--max_iters=8"])
    train.main(common + [f"--out_dir={old}", "--resume", "--max_iters=14", "--warmup_iters=8", "--batch_size=32",
                         "--learning_rate=1e-3", "--min_lr=1e-4", "--ema_decay=0.9"])
    train.main(common + [f"--out_dir={old}", "--resume", "--max_iters=20", "--warmup_iters=14", "--batch_size=32",
                         "--learning_rate=5e-4", "--min_lr=1e-4", "--ema_decay=0.9"])
    # one command: phases start at 8 and 14; warmup 0 = the cosine restarts at each phase's start
    new = str(tmp_path / "new")
    phases = [dict(start=8, warmup_iters=0, batch_size=32, learning_rate=1e-3, min_lr=1e-4, ema_decay=0.9),
              dict(start=14, learning_rate=5e-4)]
    train.main(common + [f"--out_dir={new}", "--max_iters=20", f"--phases={phases!r}"])
    assert losses(old) == losses(new)
    a, b = state(old), state(new)
    assert a["step"] == b["step"] == 20
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])  # the EMA started at step 8 in both


def test_phases_after_max_iters_are_not_run(star_data, tiny, tmp_path):
    # a short run of a phased config (--max_iters=6) ends its cosine at 6 and never reaches the phase at 10
    args = [f"--dataset={star_data()}", "--eval_interval=6", *tiny, "--max_iters=6", "--lr_schedule=cosine",
            "--phases=[{'start': 10, 'batch_size': 64}]"]
    train.main(args + [f"--out_dir={tmp_path / 'a'}"])
    with open(os.path.join(tmp_path / "a", "log.jsonl")) as f:
        lrs = [r["lr"] for r in map(json.loads, f) if "lr" in r]
    assert lrs[-1] == pytest.approx(3e-4 + 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 3 / 4)).item()) * (3e-3 - 3e-4))


@pytest.mark.parametrize("phases, message", [
    ("[{'batch_size': 64}]", r"phases\[0\] must be a dict with the step it starts at"),
    ("[{'start': 5}, {'start': 5}]", r"phases\[1\]: start=5 must come after the previous phase's start 5"),
    ("[{'start': 5, 'n_layer': 2}]", r"phases\[0\]: 'n_layer' cannot change within a run"),
    ("[{'start': 5, 'batch_size': '64'}]", r"phases\[0\]: batch_size='64' is a str, expected a int"),
    ("[{'start': 5, 'ema_decay': 1.0}]", r"ema_decay=1.0 must be in \[0, 1\)"),
    ("{'start': 5}", r"--phases: phases=\{'start': 5\} is a dict, expected a list"),
])
def test_bad_phases_are_one_line(star_data, tiny, tmp_path, phases, message):
    with pytest.raises(NanoError, match=message):
        train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", *tiny, f"--phases={phases}"])


def test_wsd_holds_the_rate_then_decays_linearly_over_its_last_share(star_data, tiny, tmp_path, monkeypatch):
    # tiny: warmup 2; then 10 steps: flat at 3e-3 until 60% of them are done, then a line to min_lr 3e-4 at step 11
    args = [f"--dataset={star_data()}", "--eval_interval=12", *tiny, "--max_iters=12", "--lr_schedule=wsd",
            "--decay_frac=0.4", "--learning_rate=3e-3", "--min_lr=3e-4", "--log_interval=1"]
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    train.main(args + [f"--out_dir={full}"])
    with open(os.path.join(full, "log.jsonl")) as f:
        lrs = [r["lr"] for r in map(json.loads, f) if "lr" in r]
    decayed = [3e-3 - max(0.0, (p / 10 - 0.6) / 0.4) * 2.7e-3 for p in range(10)]  # progress p / 10 after warmup
    assert lrs == pytest.approx([1.5e-3, 3e-3] + decayed)
    assert lrs[2:8] == pytest.approx([3e-3] * 6) and lrs[-1] < 1e-3
    first, last = losses(full)[:3], losses(full)[-3:]
    assert sum(last) / 3 < sum(first) / 3 - 0.08  # and it learns (3.01 -> 2.89 here)
    # stopped (SIGTERM) after step 9, in the decay, and resumed: the same losses and weights as the straight run
    real_batch_items = train.batch_items

    def preempt(data, P, step):
        if step == 9:
            os.kill(os.getpid(), signal.SIGTERM)  # train.py finishes this step, saves and returns
        return real_batch_items(data, P, step)
    monkeypatch.setattr(train, "batch_items", preempt)
    train.main(args + [f"--out_dir={cut}"])
    monkeypatch.undo()
    assert state(cut)["step"] == 10
    train.main(args + [f"--out_dir={cut}", "--resume"])
    assert losses(cut) == losses(full)
    a, b = state(cut), state(full)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
