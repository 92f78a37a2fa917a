"""Crash safety, the short version of tests/kill_resume.py, and clean stops on SIGINT / SIGTERM.

    python -m pytest tests/test_crash.py -q
"""
import json
import os
import signal
import subprocess
import time

import pytest  # noqa: F401
import torch

from kill_resume import ENV, run_with_kills, train_cmd
from test_trust import Forked


def test_sigkill_at_random_moments_then_resume_is_bit_identical(star_data, tmp_path):
    """The short version of tests/kill_resume.py, its processes forks of this one (Forked): 3 kills 0.2-1 s after
    a start (a 120-step run here takes ~3 s from scratch: each kill lands in the loop, as the new interpreters'
    1.5-4 s did not always, e.g. checkpoint steps [27, 39, 39]: the third died in its imports)."""
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo once, here, not in every fork
    r = run_with_kills(star_data(), str(tmp_path), kills=3, max_iters=120, start=Forked, kill_after=(0.2, 1.0))
    print(r)
    assert r["unreadable"] == 0
    assert r["final_step"] == 120
    assert r["bit_identical"], r


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_exits_cleanly(star_data, tmp_path, sig):
    out = str(tmp_path / "run")
    p = subprocess.Popen(train_cmd(star_data(), out, 100_000, False), env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    log = os.path.join(out, "log.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(log) and open(log).read().count('"loss"') >= 3):
        time.sleep(0.2)
    p.send_signal(sig)
    output, _ = p.communicate(timeout=60)
    assert p.returncode == 0, output
    assert "continue with --resume" in output
    with open(log) as f:
        logged = max(r["step"] for r in map(json.loads, f) if "loss" in r)
    assert torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)["step"] >= logged
