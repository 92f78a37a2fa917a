"""bench/star_row.py, the one command behind each row of the star results table: it writes a row with the
numbers the table shows, never replaces a row unasked, and never writes one from a run that stopped early."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from test_trust import run

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def row_run(star_data, tmp_path):
    """A tiny star config (ARLM, 1 layer, 30 steps) -> (config path, its out dir under out/, results folder);
    the out dir is removed afterwards (star_row puts runs in out/<config>_seed<seed>, as the table's rows)."""
    name = f"tinyrow_test_{os.getpid()}"
    config = tmp_path / f"{name}.py"
    config.write_text(f"dataset = {star_data('easy')!r}\nmodel = 'arlm'\nn_layer = 1\nn_head = 2\nn_embd = 32\n"
                      "batch_size = 16\nmax_iters = 30\nwarmup_iters = 5\neval_interval = 15\neval_examples = 32\n"
                      "eval_gen_examples = 16\neval_batch_size = 32\n")
    out_dir = os.path.join(ROOT, "out", f"{name}_seed5")
    yield str(config), out_dir, str(tmp_path / "rows")
    shutil.rmtree(out_dir, ignore_errors=True)


def star_row(config: str, results: str, *flags: str) -> subprocess.CompletedProcess:
    """`python bench/star_row.py ...` in a fork of this process, the train.py and eval.py it starts in forks of
    that (test_trust.run, inline=True): the real exit status, stdout and stderr, without three interpreter starts
    per call. test_bad_input_is_one_line_and_writes_nothing starts the script itself once, as a subprocess."""
    argv = [config, "--seed=5", f"--out={results}", *flags]
    r = run(os.path.join("bench", "star_row.py"), *argv, env=ENV, inline=True)
    return subprocess.CompletedProcess(argv, r.rc, r.out, r.err)


def test_a_row_holds_what_the_table_needs_and_is_never_replaced_unasked(row_run):
    config, out_dir, results = row_run
    r = star_row(config, results)
    assert r.returncode == 0, r.stderr
    path = os.path.join(results, os.path.basename(config).removesuffix(".py") + "_seed5.json")
    with open(path) as f:
        row = json.load(f)
    assert row["command"] == f"python train.py {config} --seed=5" and row["seed"] == 5
    assert row["steps"] == 30 and row["test_examples"] == 64 and not row["resumed"]
    assert 0.0 <= row["test_seq_acc"] <= row["test_tok_acc"] <= 1.0 and row["wall_s"] > 0
    assert [c["step"] for c in row["curve"]] == [15, 30] and row["machine"]["threads"] == 1
    assert row["killed_segments"] == 0 and row["ranks"] == 1 and row["threads"] == 1
    hit = next((c for c in row["curve"] if c["val_seq_acc"] >= 0.99), None)  # the speedrun's clock
    assert row["first_99"] == (hit and {"step": hit["step"], "train_s": hit["train_s"]})
    with open(os.path.join(out_dir, "log.jsonl")) as f:  # every record after the header says when it was written
        records = [json.loads(line) for line in f][1:]
    assert all(r["t"] > 0 for r in records if "done" not in r) and len(records) > 3
    before = open(path, "rb").read()
    r = star_row(config, results)  # the same row again, without --no_train or --resume: refused
    assert r.returncode != 0 and path in r.stderr and "star_superseded" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert open(path, "rb").read() == before
    r = star_row(config, results, "--no_train")  # asked for: a re-evaluation of the same run
    assert r.returncode == 0, r.stderr
    assert json.load(open(path))["steps"] == 30
    r = star_row(config, results, "--no_train", "--split=val", "--eval_args=--max_examples=16")  # another split
    assert r.returncode == 0, r.stderr
    row = json.load(open(path))
    assert row["split"] == "val" and row["test_examples"] == 16 and row["eval"]["split"] == "val"
    assert row["eval"]["nll"] == row["test_nll"] and row["eval"]["loss"] > 0


def stopped_at_12(out_dir: str):
    """Rewrite a finished run's log as a Ctrl-C or SIGTERM at step 12 leaves it: the last record says where."""
    log = os.path.join(out_dir, "log.jsonl")
    with open(log) as f:
        lines = [json.loads(line) for line in f]
    with open(log, "w") as f:
        for rec in lines:
            f.write(json.dumps({**rec, "done": 12} if "done" in rec else rec) + "\n")


def test_a_run_that_stopped_early_gets_no_row(row_run):
    config, out_dir, results = row_run
    assert star_row(config, results).returncode == 0
    os.remove(os.path.join(results, os.path.basename(config).removesuffix(".py") + "_seed5.json"))
    stopped_at_12(out_dir)
    r = star_row(config, results, "--no_train")
    assert r.returncode != 0 and "stopped at step 12 of 30" in r.stderr and "--resume" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not os.listdir(results)


def test_a_launcher_stopped_by_a_signal_is_told_as_a_stop(row_run, monkeypatch):
    """--nproc's launcher exits 128 + the signal after its ranks saved (SIGTERM: 143): the row says where the run
    stopped and to --resume it, not that the training failed."""
    config, out_dir, results = row_run
    assert star_row(config, results).returncode == 0
    os.remove(os.path.join(results, os.path.basename(config).removesuffix(".py") + "_seed5.json"))
    stopped_at_12(out_dir)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import star_row as script
    for code, said in ((143, "stopped at step 12 of 30"), (130, "stopped at step 12 of 30"),
                       (1, "training failed (exit 1")):
        monkeypatch.setattr(script.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, code))
        with pytest.raises(SystemExit) as e:
            script.main([config, "--seed=5", f"--out={results}", "--resume"])
        assert said in str(e.value) and "--resume" in str(e.value), (code, e.value)
    assert not os.listdir(results)


def test_wall_time_counts_every_process_even_one_killed_without_a_word():
    """A resumed run's wall time is the sum of its processes; one killed by SIGKILL (no closing 'done') counts up
    to the last time it logged, and the row says so (a lower bound)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from star_row import train_time
    head = {"config": {"max_iters": 40}}
    killed = [head, {"step": 10, "loss": 2.0, "t": 5.0}, {"step": 20, "val_loss": 1.0, "t": 12.0},
              {"step": 30, "loss": 1.5, "t": 20.0},  # SIGKILL here: the next process resumes from step 20
              head, {"step": 30, "val_loss": 0.5, "t": 9.0}, {"step": 40, "done": 40, "wall_s": 15.0}]
    curve, wall, n_killed = train_time(killed)
    assert (wall, n_killed) == (35.0, 1) and [c["train_s"] for c in curve] == [12.0, 29.0]
    stopped = [head, {"step": 20, "val_loss": 1.0, "t": 12.0}, {"step": 25, "done": 25, "wall_s": 14.0},  # Ctrl-C
               head, {"step": 40, "val_loss": 0.7, "t": 4.0}, {"step": 40, "done": 40, "wall_s": 6.0}]
    curve, wall, n_killed = train_time(stopped)
    assert (wall, n_killed) == (20.0, 0) and [c["train_s"] for c in curve] == [12.0, 18.0]
    assert [c["val_loss"] for c in curve] == [1.0, 0.7]
    old_log = [head, {"step": 10, "loss": 2.0}, {"step": 20, "val_loss": 1.0, "t": 12.0}, {"step": 30, "loss": 1.0},
               head, {"step": 40, "done": 40, "wall_s": 15.0}]  # train records from before they carried a 't'
    assert train_time(old_log)[1:] == (27.0, 1)


def test_bad_input_is_one_line_and_writes_nothing(row_run):
    config, out_dir, results = row_run
    for flags, says in [(("--no_train",), "no run in"),  # nothing trained yet
                        (("--resume",), "--resume: no checkpoint")]:
        r = star_row(config, results, *flags)
        assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "star_row.py"), "configs/nope.py"], cwd=ROOT,
                       env=ENV, capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip() == "error: config configs/nope.py not found (a path from the " \
        "repo root, e.g. configs/ilm_star_easy.py)"
    assert star_row(config, results).returncode == 0
    os.remove(os.path.join(results, os.path.basename(config).removesuffix(".py") + "_seed5.json"))
    r = star_row(config, results, "--no_train", "--split=bogus")  # eval.py refuses: so does the row
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].endswith("failed (its message is above); no row "
                                                                          "written") and "Traceback" not in r.stderr
    assert not os.listdir(results)


def test_star_errors_counts_where_outputs_go_wrong(tmp_path):
    """bench/diag/star_errors.py: first wrong position, length classes and accuracy per path length, on known rows."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "diag"))
    from star_errors import analyse
    preds = tmp_path / "p.jsonl"
    rows = [{"text": "5 1 1 2", "truth": "5 1 1 2", "correct": True},     # right
            {"text": "5 3 3 2", "truth": "5 1 1 2", "correct": False},    # wrong at the first hop
            {"text": "5 1 1", "truth": "5 1 1 2", "correct": False},      # stops early: wrong at 3, shorter
            {"text": "5 1 1 4 4 2", "truth": "5 1 1 2", "correct": False}]  # wrong at 3, longer
    preds.write_text("".join(json.dumps({"prompt": "", **r}) + "\n" for r in rows))
    a = analyse(str(preds))
    assert a["wrong"] == 3 and a["first_wrong_position"] == {"1": 1, "3": 2}
    assert a["wrong_by_output_length"] == {"same_length": 1, "shorter": 1, "longer": 1}
    assert a["seq_acc_by_target_length"] == {"4": {"acc": 0.25, "n": 4}}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "diag", "star_errors.py"), str(tmp_path / "nope.jsonl")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "nope.jsonl not found" in r.stderr and "Traceback" not in r.stderr
