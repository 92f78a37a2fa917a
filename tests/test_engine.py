"""The engine end to end on a tiny ARLM: learning, overfitting, exact resume, DDP equivalence, KV cache,
checkpoint safety. CPU only, about a minute.

    python -m pytest tests/test_engine.py -q
"""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

import engine
import train
from data.loader import NanoError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def losses(out_dir: str) -> list[float]:
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def weights(out_dir: str) -> dict:
    return torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=True)["model"]


def test_arlm_learns(star_data, tiny, tmp_path):
    out = str(tmp_path / "run")
    train.main([f"--dataset={star_data()}", f"--out_dir={out}", "--max_iters=60", "--eval_interval=60",
                "--learning_rate=3e-3", *tiny])
    curve = losses(out)
    assert sum(curve[-10:]) / 10 < sum(curve[:10]) / 10 - 0.3  # it learns
    ckpt = torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)  # loads without unpickling code
    assert ckpt["step"] == 60 and ckpt["model_name"] == "arlm"
    assert not any(k.startswith("_orig_mod") for k in ckpt["model"])


def test_overfit_one_batch_drives_loss_near_zero(star_data, tmp_path):
    out = str(tmp_path / "overfit")
    r = train.main([f"--dataset={star_data()}", f"--out_dir={out}", "--model=arlm", "--overfit_batches=1",
                    "--max_iters=150", "--batch_size=8", "--n_layer=2", "--n_embd=64", "--learning_rate=3e-3",
                    "--warmup_iters=10", "--lr_schedule=constant", "--eval_interval=1000", "--eval_examples=8",
                    "--eval_gen_examples=0"])
    assert losses(out)[-1] < 0.05
    assert r["step"] == 150


def test_resume_continues_exactly(star_data, tiny, tmp_path):
    """2N steps in one go == N steps, stop, resume, N more: the same losses and bit-identical weights."""
    common = [f"--dataset={star_data()}", "--lr_schedule=constant", "--eval_interval=5", "--ema_decay=0.9",
              "--dropout=0.1", *tiny]
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    train.main(common + [f"--out_dir={full}", "--max_iters=10"])
    train.main(common + [f"--out_dir={split}", "--max_iters=5"])
    train.main(common + [f"--out_dir={split}", "--max_iters=10", "--resume"])
    assert losses(full) == losses(split)
    a, b = weights(full), weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_switched_on_at_resume_starts_from_the_trained_weights(star_data, tiny, tmp_path):
    out = str(tmp_path / "run")
    common = [f"--dataset={star_data()}", f"--out_dir={out}", "--lr_schedule=constant", *tiny]
    train.main(common + ["--max_iters=5"])
    w5 = weights(out)
    train.main(common + ["--max_iters=6", "--resume", "--ema_decay=0.9"])
    ckpt = torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)
    w6, ema = ckpt["model"], ckpt["ema"]
    assert all(torch.allclose(ema[k], 0.9 * w5[k] + 0.1 * w6[k], atol=1e-6) for k in w5)


@pytest.mark.parametrize("neighbour_mix", [False, True])
def test_kv_cache_equals_recomputation(star_data, neighbour_mix):  # with neighbour_mix: abs_pos too
    from models.arlm import Config, Model
    torch.manual_seed(0)
    model = Model(Config(vocab_size=24, pad_id=0, bos_id=1, eos_id=2, block_size=42, max_target_len=10,
                         n_layer=2, n_head=2, n_embd=32, neighbour_mix=neighbour_mix,
                         abs_pos=neighbour_mix)).eval()
    if neighbour_mix:  # a mix large enough that a wrong previous token changes the outputs
        torch.nn.init.normal_(model.mix_left.weight, std=1.0)
        torch.nn.init.normal_(model.wpe.weight, std=1.0)
    from data.loader import Dataset
    data = Dataset(star_data("medium"), "val")  # prompts of different lengths: the left-padding path
    tokens, plens = data.get(range(32))
    prompt, _ = data.split_prompt_target(tokens, plens)
    assert plens.unique().numel() > 1
    for temperature in (0.0, 1.0):
        outs = []
        for cache in (True, False):
            model.config.kv_cache, model.config.temperature = cache, temperature
            outs.append(model.generate(prompt.clamp(min=0), plens, 10, generator=torch.Generator().manual_seed(3)))
        assert torch.equal(outs[0], outs[1])
    # one row alone gives the same tokens as in the batch (left padding is invisible)
    model.config.temperature = 0.0
    batch = model.generate(prompt.clamp(min=0), plens, 10)
    for i in (0, 5, 17):
        assert torch.equal(model.generate(prompt[i:i + 1, :plens[i]], plens[i:i + 1], 10)[0], batch[i])
    # every step's logits, left-padded in the batch, equal the training pass's over the row's own output
    for cache in (True, False):
        model.config.kv_cache, seen = cache, []
        hook = model.head.register_forward_hook(lambda mod, inp, out: seen.append(out))
        batch = model.generate(prompt.clamp(min=0), plens, 10)
        hook.remove()
        for i in (0, 5, 17):
            n = int((batch[i] >= 0).sum()) + int((batch[i] < 0).any())  # the steps that wrote row i (eos too)
            b = model.collate(torch.cat([prompt[i:i + 1, :plens[i]], batch[i:i + 1, :n].clamp(min=0)], 1),
                              plens[i:i + 1])
            read, pos = b["y"] >= 0, torch.arange(b["x"].size(1))[None, :]
            with torch.no_grad():
                teacher = model.head(model.trunk(b["x"], pos, read=read))  # (M, V)
            assert torch.allclose(torch.stack([s[i] for s in seen[:n]]), teacher[:n], atol=1e-5)


def test_ddp_two_processes_equal_one(star_data, tiny, tmp_path):
    """torchrun with 2 gloo processes x half the batch == 1 process x 2 micro-steps, same global batch."""
    args = [f"--dataset={star_data()}", "--max_iters=6", "--eval_interval=3", *tiny]
    one = str(tmp_path / "one")
    train.main(args + [f"--out_dir={one}", "--micro_batch_size=8"])
    two = str(tmp_path / "two")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        os.path.join(ROOT, "train.py"), *args, f"--out_dir={two}"], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]  # torchrun's and the ranks' own words if it fails
    assert losses(one) == pytest.approx(losses(two), rel=1e-5)
    a, b = weights(one), weights(two)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    with open(os.path.join(two, "log.jsonl")) as f:
        evals = [r for r in map(json.loads, f) if "val_loss" in r]
    assert len(evals) == 2  # rank 0 alone writes the log
    # a 2-rank checkpoint resumes in 1 process
    train.main(args[:1] + ["--max_iters=8", *args[3:], f"--out_dir={two}", "--resume"])
    assert torch.load(os.path.join(two, "ckpt.pt"), weights_only=True)["step"] == 8


def test_checkpoint_safety(star_data, tiny, tmp_path):
    out = str(tmp_path / "run")
    train.main([f"--dataset={star_data()}", f"--out_dir={out}", "--max_iters=2", "--eval_interval=2", *tiny])
    path = os.path.join(out, "ckpt.pt")
    # a pickle that would run code is refused by weights_only loading
    evil = str(tmp_path / "evil.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))
    with open(evil, "wb") as f:
        pickle.dump({"model_name": "arlm", "model": Evil()}, f)
    with pytest.raises(NanoError, match="cannot be read: it pickles objects .* could run code; refused"):
        engine.load_checkpoint(evil)
    assert not os.path.exists(tmp_path / "pwned")
    # truncated
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.pt")
    open(cut, "wb").write(data[: len(data) // 2])
    with pytest.raises(NanoError, match=f"checkpoint {cut} cannot be read.*truncated, corrupt"):
        engine.load_checkpoint(cut)
    # another shape
    ckpt = engine.load_checkpoint(path)
    ckpt["model_config"]["n_embd"] = 64
    with pytest.raises(NanoError, match="does not fit this model"):
        engine.model_from_checkpoint(ckpt, path)


def test_git_commit_says_when_the_code_differs_from_it(tmp_path):
    """A log header names the commit its code came from; with edited tracked .py files it must say +dirty
    (a star row once claimed a commit whose model file lacked the option the run used)."""
    import importlib.util
    import shutil
    shutil.copy(engine.__file__, tmp_path / "engine.py")
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,
                                    check=True, capture_output=True)
    git("init", "-q")
    git("add", "engine.py")
    git("commit", "-qm", "x")
    spec = importlib.util.spec_from_file_location("engine_copy", tmp_path / "engine.py")
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert copy.git_commit() == head
    (tmp_path / "notes.txt").write_text("untracked, not code")
    assert copy.git_commit() == head
    with open(tmp_path / "engine.py", "a") as f:
        f.write("\n# an edit\n")
    assert copy.git_commit() == head + "+dirty"
