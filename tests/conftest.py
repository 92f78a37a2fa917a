"""Shared test fixtures: small star-graph datasets made on the fly (no network, a second or so).

The suite runs on one thread (OMP_NUM_THREADS=1 unless set): float sums then come in a fixed order, so the
bit-for-bit checks hold, and tests/test_trust.py can fork this process safely (a fork of a process whose
OpenMP pool has started hangs in its first parallel region)."""
import faulthandler
import glob
import os
import signal
import sys
import threading

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported by any test module

import pytest
from tqdm import tqdm


def _own_tqdm_lock():
    """In a fork: tqdm's lock is a semaphore shared with the parent and every other fork. A fork killed while
    it draws a bar (test_trust.py SIGKILLs runs) would leave it taken, and every later bar in the suite would
    wait on it forever. A fork's bars take a lock of its own instead."""
    tqdm.set_lock(threading.RLock())


os.register_at_fork(after_in_child=_own_tqdm_lock)

# A test that hangs must fail the run in minutes, with every thread's stack, not use up CI's 90.
TEST_LIMIT_S = float(os.environ.get("NANOXLM_TEST_LIMIT_S", "600"))
_real_stderr = {}


def pytest_configure(config):
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture()
    _real_stderr["fd"] = os.dup(sys.stderr.fileno())  # the terminal's, not a test's captured one
    if capture is not None:
        capture.resume_global_capture()


def _hung(nodeid: str):
    fd = _real_stderr["fd"]
    os.write(fd, f"\n{nodeid} ran over {TEST_LIMIT_S:.0f} s (NANOXLM_TEST_LIMIT_S): the stacks, then exit\n".encode())
    faulthandler.dump_traceback(file=fd, all_threads=True)
    for stat in glob.glob("/proc/[0-9]*/stat"):  # its forks and subprocesses would run on: end them too
        try:
            pid, ppid = int(stat.split("/")[2]), int(open(stat).read().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
    os._exit(3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    timer = threading.Timer(TEST_LIMIT_S, _hung, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()

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
