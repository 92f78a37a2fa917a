"""What a new user meets first: the default run's threads, and a run that ends by saying what to do next.

    python -m pytest -q tests/test_first_hour.py
"""
import os
import re
import shlex
import subprocess

import torch

import engine
from conftest import ROOT, TINY
from test_trust import run


def test_threads_follow_the_free_cores_unless_asked(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        for load, processes, want in ((0.1, 1, 2), (1.2, 1, 1), (7.0, 1, 1), (0.0, 2, 1)):
            monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
            assert engine.set_threads(0, processes) == want == torch.get_num_threads()
        assert engine.set_threads(3) == 3 == torch.get_num_threads()  # asked for: taken as it is
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        assert engine.set_threads(0) == 1  # the environment's choice stands
    finally:
        torch.set_num_threads(before)


def test_a_finished_run_says_what_to_do_next_and_the_advice_works(star_data, tmp_path):
    out = tmp_path / "run"
    # train.py in a fork of pytest (its real stdout and exit status); the advice is followed in new interpreters
    r = run("train.py", f"--dataset={star_data()}", f"--out_dir={out}", *TINY, "--max_iters=4", "--eval_interval=4",
            "--phases=[]")
    assert r.rc == 0, r.err
    advice = re.findall(r"^(?:next:)?\s+(python (?:sample|eval)\.py [^#\n]*?)\s*(?:#.*)?$", r.out, re.M)
    assert [a.split()[1] for a in advice] == ["sample.py", "eval.py"], r.out
    for command in advice:  # followed verbatim (eval writes beside the checkpoint, in this run's own folder)
        f = subprocess.run(shlex.split(command) + ["--max_examples=8"] * ("eval.py" in command), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert f.returncode == 0 and "Traceback" not in f.stderr, (command, f.stderr)
