"""Shared test fixtures: small star-graph datasets made on the fly (no network, a second or so).

The suite runs on one thread (OMP_NUM_THREADS=1 unless set): float sums then come in a fixed order, so the
bit-for-bit checks hold, and tests/test_trust.py can fork this process safely (a fork of a process whose
OpenMP pool has started hangs in its first parallel region)."""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported by any test module

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def star_data(tmp_path_factory):
    """star_data('easy') -> folder with a small prepared star task (train 2048 / val 64 / test 64 rows)."""
    from data.star.prepare import write_task
    made = {}

    def make(task: str = "easy", n_train: int = 2048, n_val: int = 64, n_test: int = 64) -> str:
        key = (task, n_train, n_val, n_test)
        if key not in made:
            out = str(tmp_path_factory.mktemp(f"star_{task}") / task)
            write_task(task, out, {"train": n_train, "val": n_val, "test": n_test}, seed=0)
            made[key] = out
        return made[key]

    return make


@pytest.fixture
def tiny() -> list[str]:
    """Overrides for a model small enough that a training step takes milliseconds on a CPU."""
    return list(TINY)


TINY = ["--model=arlm", "--n_layer=1", "--n_head=2", "--n_embd=32", "--batch_size=16", "--eval_examples=32",
        "--eval_gen_examples=16", "--eval_batch_size=16", "--log_interval=1", "--warmup_iters=2"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests import kill_resume.py
