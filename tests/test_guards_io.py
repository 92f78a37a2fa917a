"""Guards around eval.py, sample.py, config variants, the prepare scripts, bench/star_row.py and torchrun
(issue 45 classes 2, 5, 7, 8; issue 44 point 7): no result replaced unasked, `base` read one way only, every
I/O or data failure one line on stderr with exit status 1, nothing silently changed from what was asked.

Progress bars are not error output: they are turned off (TQDM_DISABLE=1) or left out of the count. The full
disk (ENOSPC) is simulated in-process by an `open` that fails as a full disk does (no tmpfs to fill here); the
file-size limit is real (RLIMIT_FSIZE in the child, which gets EFBIG: Python ignores SIGXFSZ). The scripts
run in a fork of this process (test_trust.run), but for torchrun and the offline LM data (new interpreters).

    python -m pytest tests/test_guards_io.py -q
"""
import errno
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import engine
import eval as evaluate_script
import train
from conftest import ROOT, TINY
from data.loader import NanoError
from test_trust import run as fork_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def run(script, *args, cwd=ROOT, env=ENV, limit=None) -> subprocess.CompletedProcess:
    """python <script> <args> from cwd, in a fork of this process (test_trust.run: the real exit status, stdout
    and stderr, without an interpreter start per case); limit: a file-size limit in bytes for the child."""
    r = fork_run(script, *args, cwd=cwd, env=env, limit=limit)
    return subprocess.CompletedProcess([sys.executable, script, *args], r.rc, r.out, r.err)


def run_subprocess(*args, cwd=ROOT, env=ENV, timeout=300) -> subprocess.CompletedProcess:
    """python <args> from cwd in a new interpreter: for what must be set before a library is first imported
    (HF_HUB_OFFLINE for huggingface_hub, which this process may have imported already)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The one line of a failed run: status 1, no traceback, nothing else on stderr but progress bars."""
    lines = [l for l in re.split(r"[\r\n]", r.stderr) if l.strip() and not re.search(r"\d+%\|", l)]
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(lines) == 1, (r.returncode, r.stderr[-3000:])
    assert lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def star_run(tmp_path_factory, star_data):
    """A tiny ARLM trained 10 steps on star easy: its out dir holds ckpt.pt and best.pt."""
    out = str(tmp_path_factory.mktemp("guards") / "run")
    train.main([*TINY, f"--dataset={star_data('easy')}", f"--out_dir={out}", "--max_iters=10",
                "--eval_interval=10", "--phases=[]"])
    return out


# ----------------------------------------------------------------------------- class 2: no result replaced unasked
def test_eval_names_results_by_checkpoint_and_never_replaces_one_unasked(star_run, star_data, tmp_path):
    out = str(tmp_path / "ev")
    ckpt, best = os.path.join(star_run, "ckpt.pt"), os.path.join(star_run, "best.pt")
    a = evaluate_script.main([f"--ckpt={ckpt}", f"--out_dir={out}", "--max_examples=32"])
    b = evaluate_script.main([f"--ckpt={best}", f"--out_dir={out}", "--max_examples=32"])  # same folder: 2nd file
    results = sorted(f for f in os.listdir(out) if f.startswith("results_"))
    assert len(results) == 2 and len([f for f in os.listdir(out) if f.startswith("predictions_")]) == 2, results
    by_ckpt = {json.load(open(os.path.join(out, f)))["ckpt"]: f for f in results}
    assert set(by_ckpt) == {ckpt, best} and a["ckpt"] == ckpt and b["ckpt"] == best
    name = evaluate_script.results_name(ckpt, star_data("easy"), "test")
    assert by_ckpt[ckpt] == f"results_{name}.json"
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    # the same checkpoint again with fewer examples: refused in one line that says how to ask, nothing replaced
    with pytest.raises(NanoError, match=r"already holds .*--overwrite=True"):
        evaluate_script.main([f"--ckpt={ckpt}", f"--out_dir={out}", "--max_examples=16"])
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)} == before
    r = evaluate_script.main([f"--ckpt={ckpt}", f"--out_dir={out}", "--max_examples=16", "--overwrite=True"])
    assert r["examples"] == 16 and json.load(open(os.path.join(out, by_ckpt[ckpt])))["examples"] == 16
    assert json.load(open(os.path.join(out, by_ckpt[best])))["examples"] == 32  # the other one untouched
    assert sorted(os.listdir(out)) == sorted(before)  # no temporary files left


def test_eval_of_a_shipped_checkpoint_writes_nothing_into_models_pretrained(star_data, tmp_path):
    shipped = os.path.join(ROOT, "models", "pretrained")
    before = set(os.listdir(shipped))
    try:
        r = run(os.path.join(ROOT, "eval.py"), f"--ckpt={os.path.join(shipped, 'arlm_star_easy.pt')}",
                f"--dataset={star_data('easy')}", "--max_examples=8", "--device=cpu", cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr[-2000:]
        assert set(os.listdir(shipped)) == before
        written = os.listdir(tmp_path / "out" / "eval")
        assert any(f.startswith("results_arlm_star_easy_") for f in written), written
    finally:  # never leave a stray file among the shipped models, whatever happened
        for f in set(os.listdir(shipped)) - before:
            os.remove(os.path.join(shipped, f))


# ----------------------------------------------------------------------------- class 5: base read one way only
@pytest.mark.parametrize("body,line,says", [
    ('n_layer = 2\nif True:\n    base = "configs/ilm_star_easy.py"\n', 3, "top-level"),
    ('base = "configs/ilm_star_easy.py"\nn_layer = 2\nbase = "configs/mdlm_star_easy.py"\n', 3, "twice"),
    ('base = "configs"\n', 1, "is a folder"),
    ('base: str = "configs/ilm_star_easy.py"\n', 1, "top-level"),
    ('base = other = "configs/ilm_star_easy.py"\n', 1, "top-level"),
    ('for base in ["configs/ilm_star_easy.py"]:\n    pass\n', 1, "top-level"),
    ('x = [(base := "configs/ilm_star_easy.py")]\n', 1, "top-level"),
    ('base = "configs/ilm_star_easy.py"\nbase += ""\n', 2, "top-level"),
    ('base = "configs/" + "ilm_star_easy.py"\n', 1, "string"),
    ('def f():\n    base = "configs/ilm_star_easy.py"\n', 2, "top-level"),
])
def test_a_config_sets_base_once_at_top_level_or_is_refused(tmp_path, body, line, says):
    path = tmp_path / "variant.py"
    path.write_text(body)
    with pytest.raises(NanoError, match=rf"^{path}, line {line}: .*{says}") as e:
        engine.get_config([str(path)], train.DEFAULTS)
    assert "\n" not in str(e.value)
    if line == 3 and says == "top-level":  # the command line says the same, in one line
        assert str(path) in one_line_error(run("train.py", str(path), "--max_iters=1"))


def test_a_plain_base_line_still_works(tmp_path):
    path = tmp_path / "variant.py"
    path.write_text('# a variant\nbase = "configs/ilm_star_easy.py"  # what it varies\nn_layer = 2\n')
    config = engine.get_config([str(path)], train.DEFAULTS)
    assert config["n_layer"] == 2 and config["model"] == "ilm"


# ----------------------------------------------------------------------------- class 7: I/O and data errors
@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    """A tiny ARLM on a small maze task, with data/maze/score.py beside its data (as data/maze/ has it)."""
    from data.maze.prepare import write_task
    root = tmp_path_factory.mktemp("maze")
    data = str(root / "easy")
    write_task("easy", data, {"train": 256, "val": 32, "test": 32}, seed=0)
    shutil.copy(os.path.join(ROOT, "data", "maze", "score.py"), root / "score.py")
    out = str(root / "run")
    train.main([*TINY, f"--dataset={data}", f"--out_dir={out}", "--max_iters=4", "--eval_interval=4",
                "--phases=[]", "--eval_gen_examples=0"])
    return data, os.path.join(out, "ckpt.pt")


def io_cases():
    """(name, make(tmp, star_run, star_data, maze_run) -> (argv, file-size limit or None), what the line names)"""
    star = lambda tmp, run_dir, data, maze: data("easy")  # noqa: E731

    def lock_folder(tmp, run_dir, data, maze):
        os.makedirs(tmp / "o" / ".lock")
        return ["train.py", *TINY, f"--dataset={star(tmp, run_dir, data, maze)}", f"--out_dir={tmp / 'o'}",
                "--max_iters=2", "--phases=[]"], None

    def lock_not_writable(tmp, run_dir, data, maze):
        if not os.path.exists("/sys/kernel/notes"):
            pytest.skip("no read-only file to link the lock to")
        os.makedirs(tmp / "o")
        os.symlink("/sys/kernel/notes", tmp / "o" / ".lock")  # root may write anywhere else: a sysfs file refuses
        return ["train.py", *TINY, f"--dataset={star(tmp, run_dir, data, maze)}", f"--out_dir={tmp / 'o'}",
                "--max_iters=2", "--phases=[]"], None

    def train_size_limit(tmp, run_dir, data, maze):
        return ["train.py", *TINY, f"--dataset={star(tmp, run_dir, data, maze)}", f"--out_dir={tmp / 'o'}",
                "--max_iters=2", "--eval_interval=2", "--phases=[]"], 60_000  # the log fits, a checkpoint does not

    def eval_size_limit(tmp, run_dir, data, maze):
        return ["eval.py", f"--ckpt={run_dir}/ckpt.pt", f"--out_dir={tmp / 'e'}", "--device=cpu"], 2_000

    def eval_out_dir_file(tmp, run_dir, data, maze):
        (tmp / "afile").write_text("x")
        return ["eval.py", f"--ckpt={run_dir}/ckpt.pt", f"--out_dir={tmp / 'afile'}", "--device=cpu"], None

    def eval_out_dir_proc(tmp, run_dir, data, maze):
        return ["eval.py", f"--ckpt={run_dir}/ckpt.pt", "--out_dir=/proc/nanoxlm_test/ev", "--device=cpu"], None

    def train_out_dir_proc(tmp, run_dir, data, maze):
        return ["train.py", *TINY, f"--dataset={star(tmp, run_dir, data, maze)}", "--out_dir=/proc/nanoxlm_test",
                "--max_iters=2", "--phases=[]"], None

    def star_row_out_file(tmp, run_dir, data, maze):
        (tmp / "afile").write_text("x")
        config = tmp / f"row_cfg_{os.getpid()}.py"  # star_row would train it in out/row_cfg_<pid>_seed1337
        config.write_text(f"dataset = {star(tmp, run_dir, data, maze)!r}\nmodel = 'arlm'\nmax_iters = 2\n")
        return [os.path.join("bench", "star_row.py"), str(config), f"--out={tmp / 'afile'}"], None

    def maze_no_train(tmp, run_dir, data, maze):
        return [os.path.join("data", "maze", "prepare.py"), "--tasks=easy", "--n_train=0", f"--out={tmp}"], None

    def star_negative_val(tmp, run_dir, data, maze):
        return [os.path.join("data", "star", "prepare.py"), "--tasks=easy", "--n_val=-3", f"--out={tmp}"], None

    def maze_meta_without_task(tmp, run_dir, data, maze):
        d, ckpt = maze
        copy = tmp / "maze" / "easy"
        shutil.copytree(d, copy)
        shutil.copy(os.path.join(ROOT, "data", "maze", "score.py"), tmp / "maze" / "score.py")
        meta = json.load(open(copy / "meta.json"))
        del meta["task"]
        (copy / "meta.json").write_text(json.dumps(meta))
        return ["eval.py", f"--ckpt={ckpt}", f"--dataset={copy}", f"--out_dir={tmp / 'e'}", "--device=cpu"], None

    def blank_prompt(tmp, run_dir, data, maze):
        return ["sample.py", f"--ckpt={run_dir}/ckpt.pt", "--prompt=   ", "--device=cpu"], None

    return [("lock is a folder", lock_folder, ".lock"), ("lock not writable", lock_not_writable, ".lock"),
            ("train file-size limit", train_size_limit, ".pt"), ("eval file-size limit", eval_size_limit, "e/"),
            ("eval --out_dir a file", eval_out_dir_file, "afile"), ("eval under /proc", eval_out_dir_proc, "/proc"),
            ("train under /proc", train_out_dir_proc, "/proc"), ("star_row --out a file", star_row_out_file, "afile"),
            ("maze --n_train=0", maze_no_train, "n_train"), ("star --n_val=-3", star_negative_val, "n_val"),
            ("maze meta.json without task", maze_meta_without_task, "task"), ("blank --prompt", blank_prompt, "prompt")]


@pytest.mark.parametrize("name,make,names", io_cases(), ids=[c[0] for c in io_cases()])
def test_io_and_data_failures_are_one_line(star_run, star_data, maze_run, tmp_path, name, make, names):
    argv, limit = make(tmp_path, star_run, star_data, maze_run)
    row_run = os.path.join(ROOT, "out", f"row_cfg_{os.getpid()}_seed1337")
    try:
        line = one_line_error(run(*argv, limit=limit))
        assert names in line, line
        assert not os.path.exists(row_run)  # star_row refuses before training: no run started
    finally:
        shutil.rmtree(row_run, ignore_errors=True)


def test_eval_on_a_full_disk_is_one_line_and_leaves_no_partial_file(star_run, tmp_path, monkeypatch):
    """ENOSPC, simulated: eval.py's writes fail as on a full disk; the shared entry point says so in one line."""
    def full_disk(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(evaluate_script, "open", full_disk, raising=False)
    out = tmp_path / "e"
    with pytest.raises(SystemExit) as e:
        engine.run_main(evaluate_script.main, [f"--ckpt={star_run}/ckpt.pt", f"--out_dir={out}"])
    line = str(e.value.code)
    assert line.startswith("error: ") and "\n" not in line and "No space left on device" in line, line
    assert str(out) in line and "free" in line
    assert not [f for f in os.listdir(out) if not f.startswith(".")]  # nothing half-written


def test_generative_eval_with_no_real_token_left_is_one_line(star_run, monkeypatch):
    import models.arlm as arlm
    real = arlm.Model.generate

    def only_specials(self, prompt, prompt_lens, max_new_tokens, generator=None, **kw):
        if prompt.size(1) == 0:  # unconditional: a model that writes nothing but pad and eos
            out = torch.full((len(prompt), max_new_tokens), self.config.pad_id)
            out[:, 0] = self.config.eos_id
            return out
        return real(self, prompt, prompt_lens, max_new_tokens, generator=generator, **kw)

    monkeypatch.setattr(arlm.Model, "generate", only_specials)
    ckpt = f"{star_run}/ckpt.pt"
    with pytest.raises(SystemExit) as e:
        engine.run_main(evaluate_script.main, [f"--ckpt={ckpt}", "--gen_samples=4", f"--ref_ckpt={ckpt}",
                                               "--max_examples=8", "--out_dir=" + star_run + "/gen"])
    line = str(e.value.code)
    assert line.startswith("error: ") and "\n" not in line and "no text" in line, line


# ----------------------------------------------------------------------------- class 8: what was asked, or a refusal
def test_sample_refuses_more_prompts_than_the_split_has(star_run):
    line = one_line_error(run("sample.py", f"--ckpt={star_run}/ckpt.pt", "--num_samples=100000", "--device=cpu"))
    assert "--num_samples=100000" in line and "64" in line, line  # the test split's 64 prompts: the max


@pytest.mark.parametrize("phase", [dict(start=True, batch_size=32), dict(start=False), dict(start=2.0),
                                   dict(start=20, batch_size=True), dict(start=20, warmup_iters=False)])
def test_a_bool_is_not_a_number_in_phases(phase):
    with pytest.raises(NanoError, match=r"phases\[0\]"):
        train.check_phases({**train.DEFAULTS, "phases": [phase]})


@pytest.mark.parametrize("flag", ["--max_iters=True", "--batch_size=False", "--n_layer=True", "--learning_rate=True"])
def test_a_bool_is_not_a_number_on_the_command_line(flag):
    with pytest.raises(NanoError, match=flag.split("=")[0][2:]):
        engine.get_config([flag], train.DEFAULTS)


# ----------------------------------------------------------------------------- issue 44 point 7: torchrun, LM data
def test_a_run_that_fails_before_doing_anything_leaves_no_folder(tmp_path):
    out = tmp_path / "a" / "b"
    line = one_line_error(run("train.py", "--dataset=/nonexistent/data", f"--out_dir={out}", "--device=cpu"))
    assert "meta.json not found" in line and not os.path.exists(tmp_path / "a")
    os.makedirs(out)  # a folder the user made is the user's: only the lock goes
    one_line_error(run("train.py", "--dataset=/nonexistent/data", f"--out_dir={out}", "--device=cpu"))
    assert os.path.isdir(out) and os.listdir(out) == []


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="no torchrun")
def test_torchrun_failure_shows_our_line_as_the_root_cause_and_leaves_no_folder(tmp_path):
    out = tmp_path / "tr"
    r = subprocess.run(["torchrun", "--standalone", "--nproc_per_node=2", "train.py", "--dataset=/nonexistent/data",
                        f"--out_dir={out}", "--device=cpu"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    ours = "error: /nonexistent/data/meta.json not found"
    assert r.returncode != 0
    printed = [l for l in r.stderr.splitlines() if l.startswith(ours)]
    assert len(printed) == 1, r.stderr  # once, by rank 0, not once per rank
    # torchrun's own report (it always prints one for a failed rank) names our line as the root cause
    cause = r.stderr[r.stderr.index("Root Cause"):]
    assert f"traceback : {ours}" in cause and "To enable traceback" not in r.stderr, r.stderr
    assert not os.path.exists(out)


@pytest.mark.parametrize("where", ["before the ranks", "in the ranks"])
def test_nproc_failure_is_our_one_line_and_nothing_after_it(tmp_path, star_data, where):
    """python train.py --nproc=2 starts torchrun's launcher in-process: a bad setting found before the ranks
    start, or by the ranks, is one line on stderr (not once per rank), with none of torchrun's report."""
    out = tmp_path / "np"
    bad = (["--dataset=/nonexistent/data"] if where == "before the ranks" else  # the ranks check this one
           [f"--dataset={star_data()}", "--best_metric=val_seq_acc", "--eval_gen_examples=0"])
    r = run_subprocess("train.py", "--nproc=2", *bad, f"--out_dir={out}", "--device=cpu", "--max_iters=2")
    line = one_line_error(r)
    assert ("meta.json not found" if where == "before the ranks" else "needs prompt/target data") in line, line
    assert not os.path.exists(out)


@pytest.mark.parametrize("script,size", [("lm1b", "GB"), ("openwebtext", "GB")])
def test_lm_data_offline_is_one_line_naming_the_local_option(script, size, tmp_path):
    env = {**ENV, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    r = run_subprocess(os.path.join("data", script, "prepare.py"), f"--out={tmp_path / 'o'}", env=env)
    line = one_line_error(r)
    assert "--data_files" in line and "offline" in line.lower(), line
    assert size in r.stdout and "download" in r.stdout  # the size is said before anything starts
