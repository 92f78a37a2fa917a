"""Bad input gets one clear line naming the file or key and what to do, never a bare traceback.

    python -m pytest tests/test_errors.py -q
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import engine
import train
from data.loader import Dataset, NanoError
from test_trust import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data_copy(star_data, tmp_path):
    d = str(tmp_path / "easy")
    shutil.copytree(star_data(), d)
    return d


def test_missing_data_from_the_command_line(tmp_path):
    r = subprocess.run([sys.executable, "train.py", "--dataset=star/nothing_here", f"--out_dir={tmp_path / 'run'}"],
                       cwd=ROOT, capture_output=True, text=True)  # never out/default: the README's first run is there
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "data/star/nothing_here/meta.json not found: the dataset is not prepared; run `python" in r.stderr
    assert "data/star/prepare.py`" in r.stderr


def test_truncated_bin(data_copy):
    path = os.path.join(data_copy, "train.bin")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-2])  # one token short: not a whole row
    with pytest.raises(NanoError, match=f"{path}: .* not a whole number of rows of width 34 \\(truncated"):
        Dataset(data_copy, "train")
    open(path, "wb").write(raw[:-3])  # an odd byte: not a whole token
    with pytest.raises(NanoError, match="not a whole number of uint16 tokens"):
        Dataset(data_copy, "train")
    open(path, "wb").write(raw[:-34 * 2])  # a whole row short: meta.json's count disagrees
    with pytest.raises(NanoError, match="holds 2047 rows but meta.json says 2048"):
        Dataset(data_copy, "train")


def test_wrong_dtype(data_copy):
    path = os.path.join(data_copy, "val.bin")
    np.fromfile(path, dtype=np.uint16).astype(np.uint32).tofile(path)
    with pytest.raises(NanoError, match="holds 128 rows but meta.json says 64"):
        Dataset(data_copy, "val")


def test_token_out_of_vocabulary(data_copy):
    path = os.path.join(data_copy, "val.bin")
    arr = np.fromfile(path, dtype=np.uint16)
    arr[5] = 24
    arr.tofile(path)
    with pytest.raises(NanoError, match=f"{path} holds token id 24 but meta.json's vocab_size is 24"):
        Dataset(data_copy, "val")


def test_meta_missing_a_field(data_copy):
    path = os.path.join(data_copy, "meta.json")
    meta = json.load(open(path))
    del meta["vocab_size"], meta["row_width"]
    json.dump(meta, open(path, "w"))
    with pytest.raises(NanoError, match=f"{path} lacks vocab_size, row_width"):
        Dataset(data_copy, "val")
    open(path, "w").write("{not json")
    with pytest.raises(NanoError, match="is not valid JSON"):
        Dataset(data_copy, "val")


def test_batch_not_divisible(star_data, tmp_path):
    with pytest.raises(NanoError, match=r"batch_size=10 must be a multiple of micro_batch_size x world_size = 4 x 1"):
        train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--batch_size=10", "--micro_batch_size=4"])


def test_resume_without_checkpoint(star_data, tmp_path):
    with pytest.raises(NanoError, match=f"--resume: no checkpoint at {tmp_path}/ckpt.pt; run without --resume"):
        train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--resume"])


def test_resume_with_other_model_settings(star_data, tiny, tmp_path):
    train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--max_iters=1", *tiny])
    with pytest.raises(NanoError, match=r"trained with other model settings: n_embd=32 \(now 48\)"):
        train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--max_iters=2", "--resume", *tiny,
                    "--n_embd=48"])


def test_resume_a_checkpoint_older_than_a_model_option(star_data, tiny, tmp_path):
    """A checkpoint written before the model file gained an option ran at that option's default: it resumes
    at the default and refuses another value (MDLM's sampler order came after star runs were under way)."""
    args = [f"--dataset={star_data()}", f"--out_dir={tmp_path}", *tiny, "--model=mdlm"]
    train.main(args + ["--max_iters=1"])
    path = f"{tmp_path}/ckpt.pt"
    ckpt = engine.load_checkpoint(path)
    del ckpt["model_config"]["order"]  # as written before the option existed
    torch.save(ckpt, path)
    with pytest.raises(NanoError, match=r"trained with other model settings: order='random' \(now 'confidence'\)"):
        train.main(args + ["--max_iters=2", "--resume", "--order=confidence"])
    assert train.main(args + ["--max_iters=2", "--resume"])["step"] == 2


def test_prompt_outside_vocabulary(star_data, tiny, tmp_path):
    train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--max_iters=1", *tiny])
    r = run("sample.py", f"--ckpt={tmp_path}/ckpt.pt", "--prompt=4 5 banana")  # a fork: real status and stderr
    assert r.rc == 1 and "Traceback" not in r.err
    assert "prompt tokens ['banana'] are not in the vocabulary of star_easy" in r.err


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(star_data, tiny, tmp_path):
    """Steps are counted as in the log (step k = the k-th update): the NaN loss of the 4th step, computed from
    the weights after 3 updates, is 'step 4'. The failed run gives Ctrl-C back to its caller."""
    args = [f"--dataset={star_data()}", f"--out_dir={tmp_path}", *tiny, "--eval_interval=2"]
    train.main(args + ["--max_iters=2"])
    with pytest.raises(NanoError, match=r"step 4: loss is nan; stopped, .*ckpt.pt \(step 2\) keeps the last good state. "
                                        r"Lower learning_rate"):
        train.main(args + ["--max_iters=6", "--resume", "--learning_rate=1e30", "--warmup_iters=0",
                           "--grad_clip=0.0"])
    assert engine.load_checkpoint(f"{tmp_path}/ckpt.pt")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sampler_setting_added_after_the_checkpoint(star_data, tiny, tmp_path):
    train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--max_iters=1", *tiny])
    ckpt = engine.load_checkpoint(f"{tmp_path}/ckpt.pt")
    del ckpt["model_config"]["temperature"]  # as if the model file gained this setting later
    engine.save_checkpoint(f"{tmp_path}/old.pt", ckpt)
    defaults = {"ckpt": "", "device": "cpu", "use_ema": True, "seed": 0}  # sample.py's own keys, trimmed
    config, ckpt, model, _ = engine.inference_setup([f"--ckpt={tmp_path}/old.pt", "--temperature=0.7"], defaults)
    assert config["temperature"] == 0.7 and model.config.temperature == 0.7
    with pytest.raises(NanoError, match="unknown config key 'temprature'"):
        engine.inference_setup([f"--ckpt={tmp_path}/old.pt", "--temprature=0.7"], defaults)


@pytest.mark.parametrize("model,bad,says", [
    ("mdlm", ["--order=surest"], r"^order='surest' must be one of 'random', 'confidence'$"),
    ("mlm", ["--unmask=x"], r"^unmask='x' must be one of 'threshold', 'fixed'$"),
    ("editflow", ["--x0=foo"], r"^x0='foo' must be one of "),
    ("bd3lm", ["--block_len=-3"], r"^block_len=-3 must be in \[0, 65536\] \(models/bd3lm.py, LIMITS\)$"),
    # a rule between fields is the model file's assert, turned into one line naming the model
    ("bd3lm", ["--clip_beta=0.9", "--clip_omega=0.5"], r"^model bd3lm: clip_beta < clip_omega.* \(see models/bd3lm.py's Config\)$"),
])
def test_a_model_setting_out_of_range_is_one_line(star_data, tiny, tmp_path, model, bad, says):
    """A model's option outside the LIMITS its file declares, or breaking a rule between options (an assert
    in the model file), is one line before the first step."""
    with pytest.raises(NanoError, match=says):
        train.main([f"--dataset={star_data()}", f"--out_dir={tmp_path}", "--max_iters=1", *tiny, f"--model={model}",
                    *bad])


@pytest.mark.parametrize("script", ["train.py", "sample.py", "eval.py"])
def test_help_into_a_reader_that_leaves_early_is_quiet(script):
    # `python train.py --help | head -1`: the reader closes the pipe; the script stops without a traceback
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, script), "--help"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, bufsize=0)
    assert p.stdout.read(10)  # it started printing
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Traceback" not in err and "Broken pipe" not in err, err
