"""Engine trust: never lose a run, DDP that stops and averages right, the GPU paths that a CPU can test,
one clear line for every bad input, --help and evaluation on other data, phases that resume exactly.
CPU only, one thread, about two minutes.

    OMP_NUM_THREADS=1 python -m pytest -q tests/test_trust.py
    OMP_NUM_THREADS=1 python -m pytest -q tests/test_trust.py -k bad_input -s   # prints every message

The scripts are run as `python <script>.py ...` would run them, but in a forked copy of this process (no
interpreter start per case): exit status, stdout and stderr are the real ones.
"""
import errno
import glob
import json
import math
import os
import resource
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from types import SimpleNamespace

import pytest
import torch

import train
from conftest import TINY
from rows import MODELS  # tests/rows.py: every model file
from data.loader import NanoError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# ----------------------------------------------------------------------------- helpers
def exit_child(code: int):
    """End a forked child with `code` after flushing what it printed (os._exit skips the interpreter's flush)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def readable_by(user: int) -> bool:
    """Whether `user` can read the scripts (a run as an unprivileged user needs the checkout's folders open)."""
    pid = os.fork()
    if pid == 0:  # a fork, as run() does: the interpreter itself may sit where the user cannot read
        try:
            os.setgid(user)
            os.setuid(user)
            os.chdir(ROOT)
            open(os.path.join(ROOT, "train.py")).read()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def run_script(path: str, argv: list[str]) -> int:
    """Run the script at `path` in this process as `python path argv` would: -> its exit status (a sys.exit
    message or an uncaught exception's traceback goes to stderr, as the interpreter prints them)."""
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))  # the interpreter puts the script's folder first
    try:
        runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as e:  # what the interpreter does with sys.exit(x)
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        return 1


def inline_python(real_run):
    """subprocess.run for a script that starts others (bench/star_row.py): `[sys.executable, script.py, ...]`
    with at most cwd= runs in a fork of the caller (its stdout and stderr are the caller's, as a child's are);
    anything else goes to the real subprocess.run."""
    def run_(cmd, *a, **kw):
        if a or set(kw) - {"cwd"} or not (isinstance(cmd, list) and len(cmd) >= 2 and cmd[0] == sys.executable
                                          and str(cmd[1]).endswith(".py")):
            return real_run(cmd, *a, **kw)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if kw.get("cwd"):
                    os.chdir(kw["cwd"])
                code = run_script(os.path.abspath(cmd[1]), [str(c) for c in cmd[2:]])
            finally:
                exit_child(code)
        _, status = os.waitpid(pid, 0)
        return subprocess.CompletedProcess(cmd, os.waitstatus_to_exitcode(status))
    return run_


def _drain(fd: int, into):
    with os.fdopen(fd, "rb") as f:
        shutil.copyfileobj(f, into)


def run(script: str, *args: str, user: int | None = None, cwd: str = ROOT, env: dict | None = None,
        limit: int | None = None, inline: bool = False) -> SimpleNamespace:
    """`python <script> args` in a fork of this process: (rc, out, err) as the shell would see them. cwd: where
    it runs; env: its whole environment (default: this one's); limit: a file-size limit in bytes (RLIMIT_FSIZE;
    its stdout and stderr are then pipes, as a subprocess's are, which the limit does not count); inline: the
    python scripts it starts with subprocess.run run in forks too (inline_python)."""
    if user is not None and not readable_by(user):  # e.g. a checkout under root's private home folder
        pytest.skip(f"user {user} cannot read this checkout ({ROOT}), so it cannot run train.py as that user")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pipes = [os.pipe(), os.pipe()] if limit is not None else None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            code = 1
            torch.set_num_threads(1)  # the parent's OpenMP pool is not usable after a fork: run ops inline
            try:
                os.dup2(pipes[0][1] if pipes else out.fileno(), 1)
                os.dup2(pipes[1][1] if pipes else err.fileno(), 2)
                for fd in sum(map(list, pipes or []), []):
                    os.close(fd)
                sys.stdout = open(1, "w", buffering=1, closefd=False)
                sys.stderr = open(2, "w", buffering=1, closefd=False)
                if env is not None:
                    os.environ.clear()
                    os.environ.update(env)
                if limit is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
                if user is not None:
                    os.setgid(user)
                    os.setuid(user)
                if inline:
                    subprocess.run = inline_python(subprocess.run)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.alarm(120)  # a case that hangs ends (SIGALRM) instead of hanging the suite
                os.chdir(cwd)
                code = run_script(os.path.join(ROOT, script), list(args))
            finally:
                exit_child(code)
        if pipes:  # drain both pipes while the child writes (a full pipe would stop it)
            for r, w in pipes:
                os.close(w)
            readers = [threading.Thread(target=_drain, args=(r, f)) for (r, _), f in zip(pipes, (out, err))]
            for t in readers:
                t.start()
            for t in readers:
                t.join()
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return SimpleNamespace(rc=os.waitstatus_to_exitcode(status), out=out.read().decode(errors="replace"),
                               err=err.read().decode(errors="replace"))


class Forked:
    """`python <script> ...` (cmd: [sys.executable, script, *args]) started in a fork of this process, as
    subprocess.Popen(cmd, env=ENV, stdout=DEVNULL, stderr=DEVNULL) would start it in a new interpreter: running
    at once, without the ~4 s of imports a new interpreter spends first (torch, and torch._dynamo that AdamW
    imports), so a signal sent to it lands in its work."""

    def __init__(self, cmd: list[str]):
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid, self.returncode = os.fork(), None
        if self.pid == 0:
            code = 1
            try:
                torch.set_num_threads(1)  # the parent's OpenMP pool is not usable after a fork
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.environ.update(ENV)
                os.chdir(ROOT)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                code = run_script(cmd[1], cmd[2:])
            finally:
                os._exit(code)

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def read(path: str, mode: str = "r"):
    with open(path, mode) as f:
        return f.read()


def write(path: str, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def strict_json(line: str, where: str):
    """json.loads that fails on NaN / Infinity: strict parsers (JavaScript, jq, pandas' engine) reject them."""
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"{where}: bare {c} in {line[:200]}"))


def records(out_dir: str) -> list[dict]:
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [strict_json(line, "log.jsonl") for line in f if line.strip()]


def losses(out_dir: str) -> list[float]:
    return [r["loss"] for r in records(out_dir) if "loss" in r]


def ckpt_of(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def all_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def all_close(a: dict, b: dict, atol=1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            os.path.join(ROOT, "train.py"), *args]


def one_line_error(r) -> str:
    assert r.rc == 1, (r.rc, r.out[-2000:], r.err[-2000:])
    assert "Traceback" not in r.err, r.err[-3000:]
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err[-3000:]
    return lines[0]


def tiny_train(data: str, out_dir: str, *args: str) -> dict:
    return train.main([f"--dataset={data}", f"--out_dir={out_dir}", *TINY, *args])


@pytest.fixture(scope="module")
def world(star_data, tmp_path_factory):
    """Tiny trained checkpoints (ARLM, MDLM) and data sets around the star_data fixture."""
    root = tmp_path_factory.mktemp("trust")
    data = star_data()
    W = SimpleNamespace(root=str(root), data=data)
    W.arlm_dir, W.mdlm_dir = str(root / "arlm"), str(root / "mdlm")
    tiny_train(data, W.arlm_dir, "--max_iters=2", "--eval_interval=2")
    tiny_train(data, W.mdlm_dir, "--max_iters=2", "--eval_interval=2", "--model=mdlm")
    W.arlm, W.mdlm = os.path.join(W.arlm_dir, "ckpt.pt"), os.path.join(W.mdlm_dir, "ckpt.pt")
    # the same vocabulary, other examples (seed 1); prepared by the same code as the fixture's
    from data.star.prepare import write_task
    W.same_vocab = str(root / "star_easy_seed1")
    write_task("easy", W.same_vocab, {"train": 64, "val": 64, "test": 32}, seed=1)
    # another vocabulary: the node names are letters (consistent: itos changes, the ids and sizes do not)
    W.other_vocab = str(root / "star_letters")
    shutil.copytree(data, W.other_vocab)
    meta = json.loads(read(os.path.join(W.other_vocab, "meta.json")))
    meta["itos"] = meta["itos"][:4] + [chr(ord("a") + i) for i in range(len(meta["itos"]) - 4)]
    write(os.path.join(W.other_vocab, "meta.json"), json.dumps(meta))
    # rows without prompts (unconditional): no generation accuracy to measure
    W.no_prompts = str(root / "star_no_prompts")
    shutil.copytree(data, W.no_prompts)
    meta = json.loads(read(os.path.join(W.no_prompts, "meta.json")))
    meta.pop("max_prompt_len")
    meta.pop("max_target_len")
    write(os.path.join(W.no_prompts, "meta.json"), json.dumps(meta))
    for f in glob.glob(os.path.join(W.no_prompts, "*_prompt_len.bin")):
        os.remove(f)
    # config files that are not configs
    W.non_utf8 = str(root / "latin1.py")
    write(W.non_utf8, b"# caf\xe9\nmax_iters = 10\n")
    W.raises = str(root / "raises.py")
    write(W.raises, "max_iters = 10\nbatch_size = 16\nx = 1 / 0\n")
    W.a_file = str(root / "a_file")
    write(W.a_file, "not a folder\n")
    return W


# ----------------------------------------------------------------------------- §5: one clear line for every bad input
def _train(*extra):
    """train.py on the tiny ARLM and the fixture's data, into a fresh out_dir, plus `extra` (a callable of W for
    paths; a later --key wins)."""
    return lambda W, tmp: ("train.py", [f"--dataset={W.data}", f"--out_dir={tmp}/run", *TINY, "--max_iters=2"]
                           + [e(W) if callable(e) else e for e in extra])


def _with(script, *extra):
    """sample.py / eval.py on the tiny ARLM checkpoint, plus `extra` (a callable of W for paths)."""
    return lambda W, tmp: (script, [f"--ckpt={W.arlm}", "--device=cpu"]
                           + [e(W) if callable(e) else e for e in extra])


def _resume_past_the_end(W, tmp):
    shutil.copytree(W.arlm_dir, f"{tmp}/run")  # the run is at step 2
    return "train.py", [f"--dataset={W.data}", f"--out_dir={tmp}/run", *TINY, "--max_iters=2", "--resume"]


def _unwritable(W, tmp):
    """A folder this user may not write into (root ignores permissions: test_bad_input runs the case as
    nobody, in a folder outside root's private /tmp/pytest-of-root)."""
    base = tmp
    if os.geteuid() == 0:
        base = tempfile.mkdtemp(prefix="trust_unwritable_")
        os.chmod(base, 0o755)
        shutil.chown(base, 65534, 65534)
    os.makedirs(f"{base}/locked")
    if os.geteuid() == 0:
        shutil.chown(f"{base}/locked", 65534, 65534)
    os.chmod(f"{base}/locked", 0o500)
    return "train.py", [f"--dataset={W.data}", f"--out_dir={base}/locked/run", *TINY, "--max_iters=2"]


# id: (what to run, a fragment the one line must hold: the key or file it names, and the range/fix)
BAD = {
    "ema_decay=1.0": (_train("--ema_decay=1.0"), "ema_decay=1.0 must be in [0, 1)"),
    "ema_decay=-0.1": (_train("--ema_decay=-0.1"), "ema_decay=-0.1 must be in [0, 1)"),
    "dropout=1.0": (_train("--dropout=1.0"), "dropout=1.0 must be in [0.0, 0.9]"),
    "beta1=1.0": (_train("--beta1=1.0"), "beta1=1.0 must be in [0, 1)"),
    "beta2=-0.1": (_train("--beta2=-0.1"), "beta2=-0.1 must be in [0, 1)"),
    "eval_interval=0": (_train("--eval_interval=0"), "eval_interval=0 must be >= 1"),
    "log_interval=0": (_train("--log_interval=0"), "log_interval=0 must be >= 1"),
    "eval_batch_size=0": (_train("--eval_batch_size=0"), "eval_batch_size=0 must be >= 1"),
    "batch_size=0": (_train("--batch_size=0"), "batch_size=0 must be >= 1"),
    "learning_rate=0": (_train("--learning_rate=0"), "learning_rate=0.0 must be a finite number > 0"),
    "learning_rate=-1": (_train("--learning_rate=-1"), "learning_rate=-1.0 must be a finite number > 0"),
    "learning_rate=nan": (_train("--learning_rate=nan"), "learning_rate='nan' is a str, expected a float"),
    "learning_rate=1e999": (_train("--learning_rate=1e999"), "learning_rate=inf must be a finite number > 0"),
    "n_head=0": (_train("--n_head=0"), "n_head=0 must be in [1, 64]"),
    "n_head=3": (_train("--n_head=3"), "n_head=3 must divide n_embd=32"),
    "lr_schedule=linear": (_train("--lr_schedule=linear"), "lr_schedule='linear' must be 'cosine', 'constant' or 'wsd'"),
    "dtype=float16": (_train("--dtype=float16"), "dtype='float16' must be 'auto'"),
    "dtype=fp32": (_train("--dtype=fp32"), "dtype='fp32' must be 'auto'"),
    "best_metric=val_acc": (_train("--best_metric=val_acc"), "best_metric='val_acc' must be 'val_loss'"),
    "device=cuda": (_train("--device=cuda"), "device='cuda': this machine has no CUDA device"),
    "device=cuda:7": (_train("--device=cuda:7"), "device='cuda:7': this machine has"),
    "device=tpu": (_train("--device=tpu"), "device='tpu' does not exist here"),
    "model=../train": (_train("--model=../train"), "model '../train' not found: there is no models/../train.py"),
    "model=nope": (_train("--model=nope"), "model 'nope' not found: there is no models/nope.py"),
    "seed=-1": (_train("--seed=-1"), "seed=-1 must be in [0, 2^32)"),
    "seed=2**40": (_train("--seed=1099511627776"), "seed=1099511627776 must be in [0, 2^32)"),
    "max_iters<=resumed_step": (_resume_past_the_end, "is at step 2, already at max_iters=2"),
    "out_dir=a_file": (_train(lambda W: f"--out_dir={W.a_file}"), "a_file is a file, not a folder"),
    "out_dir=empty": (_train("--out_dir="), "out_dir is empty"),
    "out_dir=unwritable": (_unwritable, "is not writable; choose another --out_dir"),
    "config=a_directory": (lambda W, tmp: ("train.py", [W.root, f"--dataset={W.data}"]), "is a directory"),
    "config=non_utf8": (lambda W, tmp: ("train.py", [W.non_utf8, f"--dataset={W.data}"]), "latin1.py is not UTF-8"),
    "config=missing": (lambda W, tmp: ("train.py", [f"{W.root}/nothing.py"]), "nothing.py not found"),
    "config=raises": (lambda W, tmp: ("train.py", [W.raises, f"--dataset={W.data}", f"--out_dir={tmp}/run"]),
                      "raises.py, line 3: ZeroDivisionError: division by zero"),
    "phase_without_start": (_train("--phases=[{'batch_size': 64}]"),
                            "phases[0] must be a dict with the step it starts at"),
    "phase_start_not_after": (_train("--phases=[{'start': 4}, {'start': 4}]"),
                              "phases[1]: start=4 must come after the previous phase's start 4"),
    "phase_start_0": (_train("--phases=[{'start': 0, 'batch_size': 32}]"),
                      "phases[0]: start=0 must come after the previous phase's start 0"),
    "phase_unknown_key": (_train("--phases=[{'start': 4, 'n_layer': 2}]"),
                          "phases[0]: 'n_layer' cannot change within a run"),
    "phase_max_iters": (_train("--phases=[{'start': 4, 'max_iters': 8}]"),
                        "phases[0]: 'max_iters' cannot change within a run"),
    "phase_bad_value": (_train("--phases=[{'start': 4, 'learning_rate': -1}]"),
                        "phases[0]: learning_rate=-1.0 must be a finite number > 0"),
    "phase_bad_type": (_train("--phases=[{'start': 4, 'batch_size': 6.5}]"),
                       "phases[0]: batch_size=6.5 is a float, expected a int"),
    "phases_not_a_list": (_train("--phases={'start': 4}"), "phases={'start': 4} is a dict, expected a list"),
    "best_metric=val_seq_acc_without_prompts": (
        lambda W, tmp: ("train.py", [f"--dataset={W.no_prompts}", f"--out_dir={tmp}/run", *TINY, "--max_iters=2",
                                     "--best_metric=val_seq_acc"]),
        "best_metric='val_seq_acc' needs prompt/target data"),
    # sample.py / eval.py on a trained checkpoint
    "sample.py:steps=0_mdlm": (lambda W, tmp: ("sample.py", [f"--ckpt={W.mdlm}", "--steps=0"]), "steps=0 must be in [1, 100000]"),
    "sample.py:max_new_tokens=100000": (_with("sample.py", "--max_new_tokens=100000"),
                                     "max_new_tokens=100000 is more than this model's block_size=34"),
    "sample.py:top_p=0": (_with("sample.py", "--top_p=0"), "top_p=0.0 must be in [0.001, 1.0]"),
    "sample.py:top_p=1.5": (_with("sample.py", "--top_p=1.5"), "top_p=1.5 must be in [0.001, 1.0]"),
    "sample.py:num_samples=0": (_with("sample.py", "--num_samples=0"), "num_samples=0 must be >= 1"),
    "sample.py:ckpt=README.md": (lambda W, tmp: ("sample.py", ["--ckpt=README.md"]),
                              "checkpoint README.md is not a checkpoint written by train.py"),
    "sample.py:ckpt=a_directory": (lambda W, tmp: ("sample.py", [f"--ckpt={W.arlm_dir}"]),
                                   "arlm is a folder; give the file, e.g. "),
    "sample.py:ckpt=missing": (lambda W, tmp: ("sample.py", [f"--ckpt={tmp}/missing.pt"]), "missing.pt not found"),
    "sample.py:no_ckpt": (lambda W, tmp: ("sample.py", []), "--ckpt=PATH is required"),
    "sample.py:device=cuda": (_with("sample.py", "--device=cuda"), "device='cuda': this machine has no CUDA device"),
    "eval.py:batch_size=0": (_with("eval.py", "--batch_size=0"), "batch_size=0 must be >= 1"),
    "eval.py:ckpt=README.md": (lambda W, tmp: ("eval.py", ["--ckpt=README.md"]),
                            "checkpoint README.md is not a checkpoint written by train.py"),
    "eval.py:split=nope": (_with("eval.py", "--split=nope", lambda W: f"--out_dir={W.root}/ev"), "split 'nope': "),
    "eval.py:ref_ckpt=mdlm": (_with("eval.py", lambda W: f"--ref_ckpt={W.mdlm}", "--gen_samples=2", "--max_examples=4",
                                 lambda W: f"--out_dir={W.root}/ev"),
                           "the scorer must be an autoregressive model"),
    "eval.py:gen_length=100000": (_with("eval.py", "--gen_samples=2", "--gen_length=100000", "--max_examples=4",
                                     lambda W: f"--out_dir={W.root}/ev"),
                               "gen_length=100000 is more than this model's block_size=34"),
    "eval.py:dataset=other_vocabulary": (_with("eval.py", lambda W: f"--dataset={W.other_vocab}", "--max_examples=4",
                                            lambda W: f"--out_dir={W.root}/ev"), "has another vocabulary"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line(world, tmp_path, case):
    """Exit status 1, one line on stderr starting 'error:' that names the key or file, no traceback."""
    make, fragment = BAD[case]
    script, args = make(world, str(tmp_path))
    user = 65534 if case == "out_dir=unwritable" and os.geteuid() == 0 else None
    r = run(script, *args, user=user)
    if case == "out_dir=unwritable":
        base = os.path.dirname(os.path.dirname([a for a in args if a.startswith("--out_dir=")][0][10:]))
        os.chmod(os.path.join(base, "locked"), 0o700)
        if base != str(tmp_path):
            shutil.rmtree(base)
    line = one_line_error(r)
    print(f"\n{case}: {line}")
    assert fragment in line
    assert "could run code" not in line


# ----------------------------------------------------------------------------- §1: never lose a run
def copy_run(src: str, dst: str) -> str:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def test_a_run_is_never_overwritten_without_asking(world, tmp_path):
    out = copy_run(world.arlm_dir, str(tmp_path / "run"))
    before = read(os.path.join(out, "ckpt.pt"), "rb")
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--max_iters=3", "--eval_interval=3"]
    line = one_line_error(run("train.py", *args))
    print(f"\nout_dir holds a run: {line}")
    assert line == (f"error: out_dir {out} already holds a run (ckpt.pt); continue it with --resume, choose another "
                    f"--out_dir, or replace it with --overwrite=True")
    assert read(os.path.join(out, "ckpt.pt"), "rb") == before  # untouched
    # --overwrite=True starts afresh: step 0 -> 3, the old log kept aside once
    r = run("train.py", *args, "--overwrite=True")
    assert r.rc == 0, r.err[-2000:]
    assert ckpt_of(os.path.join(out, "ckpt.pt"))["step"] == 3
    assert [x["resumed_at"] for x in records(out) if "config" in x] == [None]
    assert [x["step"] for x in records(out) if "loss" in x] == [1, 2, 3]
    with open(os.path.join(out, "log.jsonl.old")) as f:
        assert [strict_json(x, "log.jsonl.old")["step"] for x in f if '"loss"' in x] == [1, 2]


def test_overwrite_replaces_the_old_checkpoints_at_once(world, tmp_path):
    """An --overwrite run that dies before its first checkpoint must not leave the old run's ckpt.pt/best.pt
    beside its own log (a --resume would then continue the old run)."""
    out = copy_run(world.arlm_dir, str(tmp_path / "run"))
    with pytest.raises(NanoError, match="no checkpoint was written by this run"):
        tiny_train(world.data, out, "--max_iters=3", "--eval_interval=1", "--overwrite=True", "--learning_rate=1e30",
                   "--warmup_iters=0", "--grad_clip=0.0")
    assert not os.path.exists(os.path.join(out, "ckpt.pt")) and not os.path.exists(os.path.join(out, "best.pt"))


def wait_for(pred, timeout=60.0, what=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def logged_losses(out: str) -> int:
    path = os.path.join(out, "log.jsonl")
    return read(path).count('"loss"') if os.path.exists(path) else 0


def test_one_run_per_out_dir_and_a_dead_holder_does_not_block(world, tmp_path):
    """Each process a fork of this one (Forked, run): the lock is the kernel's flock, held per process."""
    out = str(tmp_path / "run")
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--eval_interval=1000", "--ckpt_interval=1"]
    first = Forked([sys.executable, os.path.join(ROOT, "train.py"), *args, "--max_iters=100000"])
    try:
        wait_for(lambda: logged_losses(out) >= 2, what="the first run's loss lines")
        # (without a lock it would train on beside the first)
        line = one_line_error(run("train.py", *args, "--max_iters=100000", "--resume", env=ENV))
        print(f"\nout_dir in use: {line}")
        assert f"error: out_dir {out} is in use by process {first.pid} on " in line
        assert line.endswith("(train.py); wait for it to finish or choose another --out_dir")
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)  # its lock is left behind, held by no one
        first.wait()
    assert f"process {first.pid}" in read(os.path.join(out, ".lock"))
    at = ckpt_of(os.path.join(out, "ckpt.pt"))["step"]
    r = run("train.py", *args, f"--max_iters={at + 2}", "--resume", env=ENV)
    assert r.rc == 0, r.err[-2000:]
    assert ckpt_of(os.path.join(out, "ckpt.pt"))["step"] == at + 2


def test_a_fork_killed_while_drawing_a_bar_blocks_no_later_bar():
    """tqdm's lock is a semaphore that forks share. A run killed (SIGKILL, as above) while it draws its progress
    bar kept it taken, and every later bar of the suite waited on it forever (CI ran out of time so). conftest.py
    gives each fork a lock of its own."""
    from tqdm import tqdm
    tqdm(total=1, disable=False, file=open(os.devnull, "w")).close()  # this process's lock exists
    pid = os.fork()
    if pid == 0:  # the child takes the lock its bars take, and dies holding it
        tqdm.get_lock().acquire()
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    lock = tqdm.get_lock()
    for part in getattr(lock, "locks", [lock]):  # tqdm's own lock is a pair: the shared semaphore and a thread lock
        assert part.acquire(timeout=5), "a dead fork still holds the progress bar's lock"
        part.release()


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_non_finite_weights_are_never_checkpointed(world, tmp_path, monkeypatch):
    out = copy_run(world.arlm_dir, str(tmp_path / "run"))  # a good run at step 2
    ckpt, best = os.path.join(out, "ckpt.pt"), os.path.join(out, "best.pt")
    good = read(ckpt, "rb")
    blow_up = ["--resume", "--max_iters=6", "--learning_rate=1e30", "--lr_schedule=constant", "--warmup_iters=0",
               "--grad_clip=0.0"]
    # (1) the step's loss is finite, the update is not: the evaluation after it says NaN; nothing is written
    with pytest.raises(NanoError) as e:
        tiny_train(world.data, out, *blow_up, "--eval_interval=1")
    print(f"\nblow-up caught at an evaluation: {e.value}")
    assert str(e.value).startswith(f"step 3: val_loss is nan; stopped without writing {ckpt}: {ckpt} (step 2) keeps "
                                   f"the last good state. Lower learning_rate (now 1.00e+30)")
    assert read(ckpt, "rb") == good
    evals = [x for x in records(out) if "val_loss" in x]  # parsed strictly: null, never a bare NaN
    assert evals[-1]["step"] == 3 and evals[-1]["val_loss"] is None and evals[-1]["val_nll"] is None
    # (2) a gradient turns the weights to NaN while the loss is finite, between evaluations
    real_clip = torch.nn.utils.clip_grad_norm_

    def nan_gradient(params, max_norm, *a, **k):
        params = list(params)
        params[0].grad.fill_(float("nan"))
        return real_clip(params, max_norm, *a, **k)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", nan_gradient)
    with pytest.raises(NanoError) as e:
        tiny_train(world.data, out, "--resume", "--max_iters=6", "--eval_interval=100", "--ckpt_interval=1")
    print(f"\nnon-finite weights at a checkpoint: {e.value}")
    assert str(e.value).startswith(f"step 3: the weights are not finite; stopped without writing {ckpt}: {ckpt} "
                                   f"(step 2) keeps the last good state")
    monkeypatch.undo()
    assert read(ckpt, "rb") == good
    # (3) a checkpoint written without an evaluation, with weights that give a NaN loss at the next step: the
    # message must not call it good
    with pytest.raises(NanoError) as e:
        tiny_train(world.data, out, *blow_up, "--eval_interval=100", "--ckpt_interval=1")
    print(f"\nNaN loss after an unevaluated checkpoint: {e.value}")
    assert str(e.value).startswith(f"step 4: loss is nan; stopped, and {ckpt} (step 3) holds the weights that gave it, "
                                   f"so it is no good either; {best} keeps the best evaluated state. Lower")
    assert ckpt_of(ckpt)["step"] == 3
    shutil.copy(best, ckpt)  # back to the state the message points to: best.pt (step 2)
    # (4) an update too large for float32 is one line, not a RuntimeError
    with pytest.raises(NanoError) as e:
        tiny_train(world.data, out, "--resume", "--max_iters=6", "--learning_rate=1e39", "--lr_schedule=constant",
                   "--warmup_iters=0")
    print(f"\nupdate overflows float32: {e.value}")
    assert str(e.value).startswith(f"step 3: the update overflows float32; stopped, {ckpt} (step 2) keeps the last "
                                   f"good state. Lower learning_rate (now 1.00e+39)")
    # the kept checkpoint resumes and finishes
    r = tiny_train(world.data, out, "--resume", "--max_iters=4", "--eval_interval=2")
    final = ckpt_of(ckpt)
    assert r["step"] == final["step"] == 4 and all_finite(final["model"]) and r["val_loss"] < 10
    records(out)  # every line parses strictly


def test_results_json_holds_no_bare_nan(world, tmp_path):
    ckpt = ckpt_of(world.arlm)
    for v in ckpt["model"].values():
        v.fill_(float("nan"))
    path = str(tmp_path / "nan.pt")
    torch.save(ckpt, path)
    r = run("eval.py", f"--ckpt={path}", "--max_examples=8", "--device=cpu")
    assert r.rc == 0, r.err[-2000:]
    (results,) = glob.glob(str(tmp_path / "results*.json"))
    res = strict_json(read(results), results)
    assert res["loss"] is None and res["nll"] is None and res["examples"] == 8


def test_stale_temp_files_and_a_full_disk(world, tmp_path, monkeypatch):
    out = copy_run(world.arlm_dir, str(tmp_path / "run"))
    for stale in ("ckpt.pt.tmp999999", "best.pt.tmp123"):  # left by a SIGKILL mid-write
        write(os.path.join(out, stale), b"half a checkpoint")
    tiny_train(world.data, out, "--resume", "--max_iters=3", "--eval_interval=3")
    assert sorted(os.listdir(out)) == [".lock", "best.pt", "ckpt.pt", "log.jsonl"]
    good = read(os.path.join(out, "ckpt.pt"), "rb")

    def full_disk(obj, f, *a, **k):
        f.write(b"the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    path = os.path.join(out, "ckpt.pt")
    with pytest.raises(NanoError) as e:
        tiny_train(world.data, out, "--resume", "--max_iters=5", "--eval_interval=100", "--ckpt_interval=1")
    print(f"\nfull disk: {e.value}")
    assert str(e.value) == f"no space left writing {path}; the previous ckpt.pt is intact"
    monkeypatch.undo()
    assert not glob.glob(os.path.join(out, "*.tmp*"))
    assert read(path, "rb") == good and ckpt_of(path)["step"] == 3


# ----------------------------------------------------------------------------- §2: DDP
def children(pid: int) -> list[int]:
    kids = []
    for f in glob.glob(f"/proc/{pid}/task/*/children"):
        kids += [int(x) for x in read(f).split()]
    return kids


def env_of(pid: int) -> dict:
    raw = read(f"/proc/{pid}/environ", "rb").split(b"\0")
    return dict(x.decode(errors="replace").partition("=")[::2] for x in raw if b"=" in x)


def kill_left(p: subprocess.Popen, ranks) -> None:
    """After a failed check: SIGKILL a launcher still running and its ranks, so no test leaves processes."""
    if p.poll() is None:
        for pid in [*ranks, p.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.communicate()


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the ranks through /proc (Linux)")
def test_ddp_sigterm_to_one_rank_stops_every_rank(world, tmp_path):
    out = str(tmp_path / "ddp")
    p = subprocess.Popen(torchrun(f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--max_iters=100000",
                                  "--eval_interval=1000", "--ckpt_interval=50"),
                         env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ranks = {}
    try:
        wait_for(lambda: logged_losses(out) >= 3, timeout=90, what="the 2-rank run's loss lines")
        ranks = {env_of(c).get("RANK"): c for c in children(p.pid) if "RANK" in env_of(c)}
        assert set(ranks) == {"0", "1"}, ranks
        os.kill(ranks["1"], signal.SIGTERM)  # rank 1 only, as a cluster's preemption of one node might
        t0 = time.time()
        output, _ = p.communicate(timeout=30)
        took = time.time() - t0
    finally:
        kill_left(p, ranks.values())  # the ranks run in sessions of their own (torchrun's start_new_session)
    assert p.returncode == 0, output[-3000:]
    assert took < 20, took
    assert "SIGTERM (rank 1): saving a checkpoint after this step" in output
    assert "continue with --resume" in output
    step = ckpt_of(os.path.join(out, "ckpt.pt"))["step"]
    assert step >= max(x["step"] for x in records(out) if "loss" in x)  # the checkpoint is of the last step
    assert records(out)[-1]["done"] == step
    r = tiny_train(world.data, out, "--resume", f"--max_iters={step + 2}", "--eval_interval=1000")  # one process
    assert r["step"] == ckpt_of(os.path.join(out, "ckpt.pt"))["step"] == step + 2


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the ranks through /proc (Linux)")
def test_nproc_ctrl_c_saves_and_ends_with_our_words(world, tmp_path):
    """Ctrl-C to `python train.py --nproc=2` (the launcher in-process) reaches every rank, which saves after
    its step; the last thing printed is the ranks' "continue with --resume" and the checkpoint, not torchrun's
    traceback, and the exit status is 130 (128 + SIGINT)."""
    out = str(tmp_path / "ddp")
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--nproc=2", f"--dataset={world.data}",
                          f"--out_dir={out}", *TINY, "--max_iters=100000", "--eval_interval=1000"],
                         env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: logged_losses(out) >= 3, timeout=90, what="the 2-rank run's loss lines")
        os.kill(p.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the launcher: the ranks have sessions of their own
        output, _ = p.communicate(timeout=60)
    finally:
        kill_left(p, children(p.pid))
    assert p.returncode == 130, output[-3000:]
    said = [line for line in output.splitlines() if line.strip() and "it/s" not in line]
    assert "continue with --resume" in output and said[-1].startswith("first step after"), said[-5:]
    assert "Traceback" not in output and "SignalException" not in output, output[-3000:]
    step = ckpt_of(os.path.join(out, "ckpt.pt"))["step"]
    assert records(out)[-1]["done"] == step >= 3
    r = tiny_train(world.data, out, "--resume", f"--max_iters={step + 2}", "--eval_interval=1000")  # one process
    assert r["step"] == step + 2


def test_ddp_bad_input_is_one_line_and_status_1(world, tmp_path):
    """A torchrun rank leaves through os._exit (train.py's __main__: no interpreter teardown, which can abort a
    gloo rank); a NanoError must still print its one line and give exit status 1, not 0 and not an abort."""
    out = str(tmp_path / "none")
    r = subprocess.run(torchrun(f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--resume"), env=ENV,
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    output = r.stdout + r.stderr
    # the first rank to fail prints its line; torchrun may stop the other (SIGTERM) before it prints its own
    assert f"error: --resume: no checkpoint at {out}" in output, output[-3000:]
    assert "failed (exitcode: 1)" in output, output[-3000:]  # torchrun's word on the first rank to fail
    assert "exitcode  : -6" not in output
    assert f'File "{os.path.join(ROOT, "train.py")}", line' not in output  # no rank's traceback (torchrun has its own)


@pytest.mark.parametrize("model", ["mdlm", "ilm"])
def test_ddp_two_processes_equal_one_with_ema(world, tmp_path, model):
    """2 gloo processes x 8 examples == 1 process x 2 micro-steps of 8, for a model with its own noise, with
    an EMA (every rank must start the EMA from the same weights: each rank evaluates its share with it)."""
    args = [f"--dataset={world.data}", *TINY, f"--model={model}", "--max_iters=4", "--eval_interval=2",
            "--ema_decay=0.9"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    train.main(args + [f"--out_dir={one}", "--micro_batch_size=8"])
    r = subprocess.run(torchrun(*args, f"--out_dir={two}"), env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert losses(two) == pytest.approx(losses(one), rel=1e-5)
    val = {d: [x["val_loss"] for x in records(d) if "val_loss" in x] for d in (one, two)}
    assert len(val[one]) == 2 and val[two] == pytest.approx(val[one], rel=1e-5)  # the EMA's loss, both ranks'
    a, b = ckpt_of(os.path.join(one, "ckpt.pt")), ckpt_of(os.path.join(two, "ckpt.pt"))
    assert all_close(a["model"], b["model"]) and all_close(a["ema"], b["ema"])


# ----------------------------------------------------------------------------- §3: the GPU paths a CPU can test
@pytest.mark.parametrize("model", MODELS)
def test_bfloat16_autocast_on_cpu(world, tmp_path, model):
    """--dtype=bfloat16 runs the CUDA default's autocast on the CPU: training, the evaluation with generation
    under autocast (masks, -inf, float64 sampling), and sample.py on the checkpoint."""
    args = [*TINY, f"--model={model}", "--max_iters=3", "--eval_interval=3", "--seed=5"]
    bf16, fp32 = str(tmp_path / "bf16"), str(tmp_path / "fp32")
    r = tiny_train(world.data, bf16, *args, "--dtype=bfloat16")
    tiny_train(world.data, fp32, *args, "--dtype=float32")
    a, b = losses(bf16), losses(fp32)
    assert len(a) == 3 and all(map(torch.isfinite, torch.tensor(a)))
    assert a[0] != b[0] and a[0] == pytest.approx(b[0], abs=0.05)  # autocast really ran, and ran right
    assert all(torch.isfinite(torch.tensor(r[k])) for k in ("val_loss", "val_seq_acc", "val_tok_acc"))
    s = run("sample.py", f"--ckpt={bf16}/ckpt.pt", "--num_samples=2", "--device=cpu")
    assert s.rc == 0 and "Traceback" not in s.err, s.err[-2000:]
    assert len([x for x in s.out.splitlines() if x.startswith("  from ")]) == 2  # two star problems shown


def test_compile_equals_eager_and_its_checkpoint_loads(world, tmp_path, monkeypatch):
    """--compile=True: the same losses, a checkpoint without '_orig_mod.' keys that sample.py reads. The
    default backend (inductor) costs ~50 s of C++ compilation on a cold cache; NANOXLM_TEST_INDUCTOR=1 uses
    it, else aot_eager (Dynamo + AOTAutograd: the graph capture of the model, without the code generation)."""
    if not os.environ.get("NANOXLM_TEST_INDUCTOR"):
        import functools
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    args = ["--max_iters=3", "--eval_interval=3", "--ema_decay=0.9"]  # no dropout: inductor draws its own random
    eager, compiled = str(tmp_path / "eager"), str(tmp_path / "compiled")
    tiny_train(world.data, eager, *args)
    tiny_train(world.data, compiled, *args, "--compile=True")
    assert losses(compiled) == pytest.approx(losses(eager), abs=1e-4)
    ckpt = ckpt_of(os.path.join(compiled, "ckpt.pt"))
    for part in ("model", "ema"):
        assert not [k for k in ckpt[part] if "_orig_mod." in k or k.startswith("module.")]
        assert all_close(ckpt[part], ckpt_of(os.path.join(eager, "ckpt.pt"))[part], atol=1e-4)
    s = run("sample.py", f"--ckpt={compiled}/ckpt.pt", "--num_samples=2", "--device=cpu")
    assert s.rc == 0 and "Traceback" not in s.err, s.err[-2000:]
    assert len([x for x in s.out.splitlines() if x.startswith("  from ")]) == 2  # two star problems shown


def test_checkpoint_rng_states_load_on_the_cpu(world):
    """torch.set_rng_state / torch.cuda.set_rng_state take CPU ByteTensors: a checkpoint read onto a GPU
    (map_location=device) broke resuming there. Every reader goes through engine.load_checkpoint."""
    import engine
    ckpt = engine.load_checkpoint(world.arlm)
    states = ckpt["rng"]["cpu"] + ckpt["rng"]["cuda"]
    assert states and all(t.device.type == "cpu" and t.dtype == torch.uint8 for t in states), states
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    torch.set_rng_state(ckpt["rng"]["cpu"][0])  # what a resume does


@pytest.mark.parametrize("name,want", [("cuda", "cuda:0"), ("auto", "cuda:0"), ("cuda:0", "cuda:0"),
                                       ("cuda:1", "cuda:1")])
def test_a_cuda_device_always_carries_its_index(monkeypatch, name, want):
    """torch.cuda.set_device('cuda') raises ValueError; on an H200 every train.py run with --device=cuda died
    there (bench/results/gpu_check_NVIDIA_H200.json, run 1). Two CUDA devices are pretended here."""
    import engine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert engine.pick_device(name) == want
    with pytest.raises(engine.NanoError, match="cuda:0 to cuda:1"):
        engine.pick_device("cuda:2")


# ----------------------------------------------------------------------------- §6: help, other data, best metric
@pytest.mark.parametrize("script", ["train.py", "sample.py", "eval.py"])
def test_help_lists_every_key_with_its_default(script):
    r = run(script, "--help")
    assert r.rc == 0 and r.err == "", r.err[-2000:]
    defaults = runpy.run_path(os.path.join(ROOT, script))["DEFAULTS"]
    if script == "train.py":  # python train.py runs the default config: --help shows the values it runs with
        defaults = __import__("engine").get_config([train.DEFAULT_CONFIG], train.DEFAULTS)
        assert defaults["optimizer"] == "muon" and "the values configs/ilm_star_easy_speedrun.py gives" in r.out
    for k, v in defaults.items():
        assert f"  --{k}={v!r}" in r.out, k
    if script == "train.py":  # the default model's own keys too (the config's where it sets them)
        from models.ilm import Config
        import dataclasses
        for f in dataclasses.fields(Config):
            assert f"  --{f.name}={defaults.get(f.name, f.default)!r}" in r.out, f.name
        line = [x for x in r.out.splitlines() if x.startswith("  --eval_interval=")][0]
        assert line.endswith("# steps between evaluations (and checkpoints)")  # the comment beside it


def test_eval_on_another_dataset_and_split_keeps_each_result(world, tmp_path):
    out = str(tmp_path / "ev")
    runs = {}
    for split in ("test", "val"):
        r = run("eval.py", f"--ckpt={world.arlm}", f"--dataset={world.same_vocab}", f"--split={split}",
                f"--out_dir={out}", "--device=cpu")
        assert r.rc == 0, r.err[-2000:]
        runs[split] = r.out
    files = sorted(os.listdir(out))
    results = [f for f in files if f.startswith("results_")]
    assert len(results) == 2 and results[0].endswith("star_easy_seed1_test.json") \
        and results[1].endswith("star_easy_seed1_val.json"), files
    assert len([f for f in files if f.startswith("predictions_")]) == 2
    for name, split, n in ((results[0], "test", 32), (results[1], "val", 64)):
        res = strict_json(read(os.path.join(out, name)), name)
        assert (res["dataset"], res["split"], res["examples"], res["step"]) == (world.same_vocab, split, n, 2)
        assert res["loss"] > 0 and 0 <= res["seq_acc"] <= 1
    # the data the checkpoint was trained on gives other numbers (other examples): the --dataset was used
    r = run("eval.py", f"--ckpt={world.arlm}", "--split=val", f"--out_dir={out}", "--device=cpu")
    assert r.rc == 0, r.err[-2000:]
    (own,) = [f for f in os.listdir(out) if f.startswith("results_") and f not in results]
    assert own.endswith("easy_val.json")
    assert strict_json(read(os.path.join(out, own)), own)["loss"] != \
        strict_json(read(os.path.join(out, results[1])), results[1])["loss"]


def test_resume_with_another_best_metric_tracks_the_new_one(world, tmp_path):
    out = copy_run(world.arlm_dir, str(tmp_path / "run"))  # best_metric val_loss, best.pt at step 2
    assert ckpt_of(os.path.join(out, "best.pt"))["best_metric"] == "val_loss"
    tiny_train(world.data, out, "--resume", "--max_iters=4", "--eval_interval=2", "--best_metric=val_seq_acc")
    best = ckpt_of(os.path.join(out, "best.pt"))
    at4 = [x for x in records(out) if "val_seq_acc" in x and x["step"] == 4][-1]
    assert (best["step"], best["best_metric"], best["best"]) == (4, "val_seq_acc", at4["val_seq_acc"])
    # and back to val_loss: the best val_loss of before counts no more (it measured another checkpoint's run)
    tiny_train(world.data, out, "--resume", "--max_iters=6", "--eval_interval=2", "--best_metric=val_loss")
    best = ckpt_of(os.path.join(out, "best.pt"))
    at6 = [x for x in records(out) if "val_loss" in x and x["step"] == 6][-1]
    assert (best["step"], best["best_metric"], best["best"]) == (6, "val_loss", at6["val_loss"])


def test_wandb_without_wandb_is_one_line(world, tmp_path):
    try:
        import wandb  # noqa: F401
        pytest.skip("wandb is installed here")
    except ImportError:
        pass
    line = one_line_error(run("train.py", f"--dataset={world.data}", f"--out_dir={tmp_path}/run", *TINY,
                              "--max_iters=2", "--wandb_log=True"))
    print(f"\nwandb_log=True without wandb: {line}")
    assert line == "error: wandb_log=True needs `pip install wandb`; or leave --wandb_log=False"


# ----------------------------------------------------------------------------- phases
def test_stop_and_resume_across_a_phase_boundary_is_bit_identical(world, tmp_path, monkeypatch):
    """A phased run stopped (SIGTERM, as a preemption would) before, at and after the step its phase 2 starts,
    then resumed with the same command, equals the run in one go: losses, weights and the EMA that phase 2
    switches on, which starts from the weights of the step it starts at."""
    phases = [dict(start=6, batch_size=32, learning_rate=1e-3, warmup_iters=2, ema_decay=0.9)]
    args = [*TINY, "--max_iters=12", "--eval_interval=4", "--dropout=0.1", f"--phases={phases!r}"]
    full = str(tmp_path / "full")
    tiny_train(world.data, full, *args)
    real_batch_items = train.batch_items
    stops = {}
    for stop_at in (4, 6, 7):
        out = str(tmp_path / f"stopped_at_{stop_at}")

        def preempt(data, P, step, stop_at=stop_at):
            if step == stop_at - 1:
                os.kill(os.getpid(), signal.SIGTERM)  # train.py finishes this step, saves and returns
            return real_batch_items(data, P, step)
        monkeypatch.setattr(train, "batch_items", preempt)
        assert tiny_train(world.data, out, *args)["step"] == stop_at
        monkeypatch.undo()
        stops[stop_at] = ckpt_of(os.path.join(out, "ckpt.pt"))
        assert stops[stop_at]["step"] == stop_at
        tiny_train(world.data, out, *args, "--resume")
        assert losses(out) == losses(full), stop_at
        a, b = ckpt_of(os.path.join(full, "ckpt.pt")), ckpt_of(os.path.join(out, "ckpt.pt"))
        assert b["step"] == 12 and all_equal(a["model"], b["model"]) and all_equal(a["ema"], b["ema"]), stop_at
    # phase 2's EMA: none before step 6; after step 7 it is 0.9 * w6 + 0.1 * w7
    assert stops[4]["ema"] is None and stops[6]["ema"] is None
    w6, w7, ema7 = stops[6]["model"], stops[7]["model"], stops[7]["ema"]
    assert all(torch.allclose(ema7[k], 0.9 * w6[k] + 0.1 * w7[k], atol=1e-6) for k in w6)
    c = math.cos(math.pi / 4)  # phase 2's own warmup (2 steps from 6), then its cosine from 1e-3 to min_lr 3e-4
    assert [r["lr"] for r in records(full) if "lr" in r][6:10] == pytest.approx(
        [5e-4, 1e-3, 1e-3, 3e-4 + 0.5 * (1 + c) * (1e-3 - 3e-4)])
