"""No run lost by --overwrite, no checkpoint trusted as it is, no advice that goes in a circle (issue 45,
classes 1, 4 and 6). CPU only, one thread.

    OMP_NUM_THREADS=1 python -m pytest -q tests/test_guards.py
    OMP_NUM_THREADS=1 python -m pytest -q tests/test_guards.py -k advice -s   # prints every message followed

The scripts run in a forked copy of this process (test_trust.run: exit status, stdout and stderr are the real
ones); bench/star_row.py too, and the train.py and eval.py it starts run in forks of that copy.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

import pytest
import torch

import engine
import sample
import train
from conftest import ROOT, TINY
from data.loader import NanoError
from test_trust import one_line_error, run

MODEL_KEYS = ("--n_layer", "--n_head", "--n_embd")
TRAIN_ONLY = [a for a in TINY if a.split("=")[0] not in MODEL_KEYS]  # TINY less the network's size
RUN_FILES = ("ckpt.pt", "best.pt", "log.jsonl")


def tiny_args(W, out: str, *extra: str) -> list[str]:
    return [f"--dataset={W.data}", f"--out_dir={out}", *TINY, "--max_iters=2", "--eval_interval=2", *extra]


def files_of(folder: str) -> dict:
    """Every file of a folder but the lock -> its bytes."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*")) + glob.glob(os.path.join(folder, ".*"))):
        if os.path.isfile(path) and not path.endswith(".lock"):
            with open(path, "rb") as f:
                out[os.path.basename(path)] = f.read()
    return out


def copy_run(src: str, dst: str) -> str:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def log_steps(path: str) -> list[int]:
    with open(path) as f:
        return [r["step"] for r in map(json.loads, f) if "loss" in r]


def resave(src: str, dst: str, change) -> str:
    """A copy of checkpoint src with change(ckpt) applied."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    change(ckpt)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    torch.save(ckpt, dst)
    return dst


@pytest.fixture(scope="module")
def world(star_data, tmp_path_factory):
    """A tiny ARLM run at step 2 with an EMA (ckpt.pt, best.pt, log.jsonl), and data with another vocabulary."""
    root = tmp_path_factory.mktemp("guards")
    W = SimpleNamespace(root=str(root), data=star_data())
    W.run = str(root / "run")
    train.main(tiny_args(W, W.run, "--ema_decay=0.5"))
    W.ckpt = os.path.join(W.run, "ckpt.pt")
    W.other_vocab = str(root / "star_letters")  # the node names are letters: itos changes, nothing else
    shutil.copytree(W.data, W.other_vocab)
    with open(os.path.join(W.other_vocab, "meta.json")) as f:
        meta = json.load(f)
    meta["itos"] = meta["itos"][:4] + [chr(ord("a") + i) for i in range(len(meta["itos"]) - 4)]
    with open(os.path.join(W.other_vocab, "meta.json"), "w") as f:
        json.dump(meta, f)
    return W


# ----------------------------------------------------------------------------- class 1: --overwrite keeps the old run
def _not_writable(W, tmp):
    """The run in a folder this user may not write into (root ignores permissions: then the case runs as
    nobody, in a folder outside root's private pytest tmp). -> (out_dir, user)"""
    base = tmp
    if os.geteuid() == 0:
        base = tempfile.mkdtemp(prefix="guards_unwritable_")
        os.chmod(base, 0o755)
    out = copy_run(W.run, os.path.join(base, "run"))
    if os.geteuid() == 0:
        for p in [out] + glob.glob(os.path.join(out, "*")):
            shutil.chown(p, 65534, 65534)
    os.chmod(out, 0o500)
    return out, (65534 if os.geteuid() == 0 else None)


# each: what makes the --overwrite run fail before it could train (a callable of W, tmp for paths)
FAILING = {
    "missing dataset": lambda W, tmp: [f"--dataset={tmp}/no_such_data"],
    "model option refused when built": lambda W, tmp: ["--model=bd3lm", "--clip_beta=0.9", "--clip_omega=0.5"],
    "bad phase": lambda W, tmp: ["--phases=[{'start': 1, 'n_layer': 2}]"],
    "batch not divisible": lambda W, tmp: ["--micro_batch_size=5"],
    "wandb not installed": lambda W, tmp: ["--wandb_log=True"],
    "init_from missing": lambda W, tmp: [f"--init_from={tmp}/no_such.pt"],
    "init_from another vocabulary": lambda W, tmp: [f"--dataset={W.other_vocab}", f"--init_from={W.ckpt}"],
    "init_from another model": lambda W, tmp: ["--model=mdlm", f"--init_from={W.ckpt}"],
    "out_dir not writable": None,
}


@pytest.mark.parametrize("case", list(FAILING))
def test_an_overwrite_that_fails_leaves_the_old_run_as_it_was(world, tmp_path, case):
    """--overwrite=True checks everything the run needs before anything in out_dir changes: after each failure
    the old run's files are byte-identical and nothing was added; a folder that did not exist is not made."""
    if case == "wandb not installed":
        try:
            import wandb  # noqa: F401
            pytest.skip("wandb is installed here")
        except ImportError:
            pass
    user = None
    if case == "out_dir not writable":
        out, user = _not_writable(world, str(tmp_path))
        extra = []
    else:
        out = copy_run(world.run, str(tmp_path / "run"))
        extra = FAILING[case](world, str(tmp_path))
    before = files_of(out)
    try:
        r = run("train.py", *tiny_args(world, out, "--max_iters=4", "--overwrite=True"), *extra, user=user)
        after = files_of(out)
    finally:
        if user is not None or case == "out_dir not writable":
            os.chmod(out, 0o700)
            if not out.startswith(str(tmp_path)):
                shutil.rmtree(os.path.dirname(out))
    line = one_line_error(r)
    print(f"\n{case}: {line}")
    assert after == before, (case, sorted(after), sorted(before))
    if case != "out_dir not writable":  # the same failure into a folder that does not exist yet: not made
        fresh = str(tmp_path / "fresh" / "run")
        one_line_error(run("train.py", *tiny_args(world, fresh, "--max_iters=4", "--overwrite=True"), *extra))
        assert not os.path.exists(os.path.dirname(fresh))


def test_overwrites_keep_every_old_run(world, tmp_path):
    """Two successive overwrites: the first run's files are .old, the second's .old2, byte for byte; an
    overwrite that dies before its first checkpoint keeps the run before it too (.old3)."""
    out = copy_run(world.run, str(tmp_path / "run"))
    first = files_of(out)
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--overwrite=True"]
    train.main(args + ["--max_iters=3", "--eval_interval=3"])
    second = files_of(out)
    assert {f"{k}.old": v for k, v in first.items()} == {k: second[k] for k in second if k.endswith(".old")}
    assert log_steps(os.path.join(out, "log.jsonl")) == [1, 2, 3]
    train.main(args + ["--max_iters=4", "--eval_interval=4"])
    third = files_of(out)
    assert {f"{k}.old": v for k, v in first.items()} == {k: third[k] for k in third if k.endswith(".old")}
    assert {f"{k}.old2": second[k] for k in RUN_FILES} == {k: third[k] for k in third if k.endswith(".old2")}
    assert log_steps(os.path.join(out, "log.jsonl.old")) == [1, 2]
    assert log_steps(os.path.join(out, "log.jsonl.old2")) == [1, 2, 3]
    assert log_steps(os.path.join(out, "log.jsonl")) == [1, 2, 3, 4]
    with pytest.raises(NanoError, match="no checkpoint was written by this run"):  # dies at step 1
        train.main(args + ["--max_iters=3", "--eval_interval=1", "--learning_rate=1e30", "--warmup_iters=0",
                           "--grad_clip=0.0"])
    fourth = files_of(out)
    assert {f"{k}.old3": third[k] for k in RUN_FILES} == {k: fourth[k] for k in fourth if k.endswith(".old3")}
    assert not os.path.exists(os.path.join(out, "ckpt.pt")) and not os.path.exists(os.path.join(out, "best.pt"))
    assert all(fourth[k] == third[k] for k in third if ".old" in k)  # nothing older was touched


# ----------------------------------------------------------------------------- class 4: checkpoints are checked on load
DELETE = object()
# what each use reads from a checkpoint: a checkpoint without one of these (or with the wrong kind of value)
# is one line naming it
BROKEN = {
    "sample.py": [(k, DELETE) for k in ("model_name", "model", "model_config", "meta", "config")]
    + [("meta", None), ("config", {"seed": 1}), ("model_config", [1, 2])],
    "eval.py": [(k, DELETE) for k in ("model_name", "model", "model_config", "meta", "config", "step")]
    + [("step", "2"), ("meta", {"itos": []})],
    "train.py --resume": [(k, DELETE) for k in ("model_name", "model", "model_config", "step", "optimizer", "rng")]
    + [("optimizer", {"state": {}}), ("rng", {"cpu": []}), ("step", 2.5)],
}


@pytest.mark.parametrize("use,key,value", [(u, k, v) for u, cases in BROKEN.items() for k, v in cases],
                         ids=[f"{u}-{k}-{'bad' if v is not DELETE else 'missing'}" for u, c in BROKEN.items()
                              for k, v in c])
def test_a_checkpoint_without_what_its_use_needs_is_one_line(world, tmp_path, use, key, value):
    out = copy_run(world.run, str(tmp_path / "run"))
    path = resave(world.ckpt, os.path.join(out, "ckpt.pt"),
                  lambda c: c.pop(key) if value is DELETE else c.update({key: value}))
    if use == "train.py --resume":
        r = run("train.py", *tiny_args(world, out, "--max_iters=4", "--resume"))
    elif use == "eval.py":
        r = run("eval.py", f"--ckpt={path}", "--device=cpu", "--max_examples=4", f"--out_dir={tmp_path}/ev")
    else:
        r = run("sample.py", f"--ckpt={path}", "--device=cpu", "--num_samples=1")
    line = one_line_error(r)
    print(f"\n{use} {key}: {line}")
    assert path in line and repr(key) in line


def test_resume_from_a_shipped_model_says_to_start_from_it(world, tmp_path):
    """A shipped checkpoint holds weights only: --resume names what is missing and advises --init_from,
    which works (the run starts from the shipped weights)."""
    out = str(tmp_path / "run")
    os.makedirs(out)
    shipped = os.path.join(ROOT, "models", "pretrained", "arlm_star_easy.pt")
    shutil.copy(shipped, os.path.join(out, "ckpt.pt"))
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TRAIN_ONLY, "--max_iters=2", "--eval_interval=2",
            "--resume"]
    line = one_line_error(run("train.py", *args))
    print(f"\n{line}")
    assert "'optimizer'" in line and "--init_from=" in line
    follow_every_advice(line, args, lambda a: run("train.py", *a), str(tmp_path))


def relabelled(src: str, name: str, dst: str) -> str:
    return resave(src, dst, lambda c: c.update(model_name=name))


def test_a_model_name_that_does_not_fit_the_weights_is_refused(world, tmp_path):
    """Every shipped model relabelled as every other model is refused when loaded (MLM and MDLM weights have
    the same shapes: their settings tell them apart), and sample.py says so in one line."""
    shipped = sorted(glob.glob(os.path.join(ROOT, "models", "pretrained", "*_star_easy.pt")))
    assert len(shipped) >= 6
    for src in shipped:
        own = torch.load(src, weights_only=True)["model_name"]
        source = open(os.path.join(ROOT, "models", f"{own}.py")).read()
        for name in engine.model_names():
            if name == own or open(os.path.join(ROOT, "models", f"{name}.py")).read() == source:
                continue  # (a verbatim copy of the model's file, models/my<name>.py say, fits by construction)
            path = relabelled(src, name, str(tmp_path / f"{own}_as_{name}.pt"))
            with pytest.raises(NanoError, match=re.escape(path)):
                engine.inference_setup([f"--ckpt={path}", "--device=cpu"], sample.DEFAULTS)
    path = str(tmp_path / "mlm_as_mdlm.pt")
    line = one_line_error(run("sample.py", f"--ckpt={path}", "--device=cpu", "--num_samples=1"))
    print(f"\n{line}")
    assert "mdlm" in line and "mlm" in line
    # weights of another model under settings both models have: the weights say it
    ilm = engine.model_defaults({"model": "ilm"})
    path = resave(world.ckpt, str(tmp_path / "arlm_weights_as_ilm.pt"), lambda c: c.update(
        model_name="ilm", model_config={k: v for k, v in c["model_config"].items() if k in ilm}))
    with pytest.raises(NanoError, match="does not fit this model"):
        engine.inference_setup([f"--ckpt={path}", "--device=cpu"], sample.DEFAULTS)


# ----------------------------------------------------------------------------- init_from
def test_init_from_starts_a_new_run_from_the_checkpoints_weights(world, tmp_path, monkeypatch):
    """The weights at step 0 are the checkpoint's (its EMA, which sampling uses, when it has one), the
    optimizer is fresh, training proceeds from step 0, and the log header says where the run started from."""
    seen = {}
    make_optimizer = train.make_optimizer

    def spy(model, C, fused):
        seen["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["optimizer"] = make_optimizer(model, C, fused)
        return seen["optimizer"]
    monkeypatch.setattr(train, "make_optimizer", spy)
    out = str(tmp_path / "run")
    r = train.main(tiny_args(world, out, "--max_iters=3", "--eval_interval=3", f"--init_from={world.ckpt}"))
    ckpt = torch.load(world.ckpt, weights_only=True)
    assert ckpt["ema"] is not None and not all(torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])
    assert seen["weights"].keys() == ckpt["ema"].keys()
    assert all(torch.equal(seen["weights"][k], ckpt["ema"][k]) for k in ckpt["ema"])
    assert r["step"] == 3
    with open(os.path.join(out, "log.jsonl")) as f:
        recs = [json.loads(x) for x in f]
    assert recs[0]["config"]["init_from"] == world.ckpt and recs[0]["init_from"] == {"ckpt": world.ckpt, "step": 2}
    assert [x["step"] for x in recs if "loss" in x] == [1, 2, 3]
    assert all(x["loss"] < 10 for x in recs if "loss" in x)
    new = torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)
    assert new["step"] == 3 and new["config"]["init_from"] == world.ckpt


def test_init_from_a_shipped_model_fine_tunes_it(world, tmp_path):
    """models/pretrained/arlm_star_easy.pt (4L/64) on the same vocabulary: its settings come with it (the
    run sets no network size), and its first loss is far below a fresh model's."""
    shipped = os.path.join(ROOT, "models", "pretrained", "arlm_star_easy.pt")
    common = [f"--dataset={world.data}", *TRAIN_ONLY, "--max_iters=2", "--eval_interval=2"]
    tuned = str(tmp_path / "tuned")
    train.main(common + [f"--out_dir={tuned}", f"--init_from={shipped}"])
    scratch = str(tmp_path / "scratch")
    train.main(common + [f"--out_dir={scratch}"])

    def first_loss(out):
        with open(os.path.join(out, "log.jsonl")) as f:
            return next(r["loss"] for r in map(json.loads, f) if "loss" in r)
    assert first_loss(tuned) < first_loss(scratch) - 1.0
    mc = torch.load(os.path.join(tuned, "ckpt.pt"), weights_only=True)["model_config"]
    assert (mc["n_layer"], mc["n_embd"]) == (4, 64)


def test_a_run_from_a_checkpoint_resumes_with_or_without_init_from(world, tmp_path):
    """The stop message says "continue with --resume": the same command plus --resume continues a run that
    started from a shipped model (its 4L/64 settings, which the command does not set), and so does --resume
    without --init_from."""
    shipped = os.path.join(ROOT, "models", "pretrained", "arlm_star_easy.pt")
    out = str(tmp_path / "run")
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TRAIN_ONLY, "--eval_interval=2"]
    train.main(args + ["--max_iters=2", f"--init_from={shipped}"])
    assert train.main(args + ["--max_iters=4", f"--init_from={shipped}", "--resume"])["step"] == 4
    assert train.main(args + ["--max_iters=6", "--resume"])["step"] == 6
    ckpt = torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)
    assert (ckpt["model_config"]["n_layer"], ckpt["model_config"]["n_embd"], ckpt["step"]) == (4, 64, 6)


def test_init_from_keeps_the_runs_own_sampler_settings(world, tmp_path, capsys, monkeypatch):
    """A setting that builds the same weights (here the sampler's top_k) is the run's: the weights at step 0
    are still the checkpoint's, the new checkpoint records the run's value, and one line says so."""
    seen, make_optimizer = {}, train.make_optimizer
    monkeypatch.setattr(train, "make_optimizer", lambda model, C, fused: (
        seen.update(weights={k: v.clone() for k, v in model.state_dict().items()}), make_optimizer(model, C, fused))[1])
    out = str(tmp_path / "run")
    train.main(tiny_args(world, out, "--max_iters=1", "--eval_interval=1", "--top_k=3", f"--init_from={world.ckpt}"))
    assert "its weights, with this run's top_k=3" in capsys.readouterr().out
    was, new = torch.load(world.ckpt, weights_only=True), torch.load(os.path.join(out, "ckpt.pt"), weights_only=True)
    assert was["model_config"]["top_k"] == 0 and new["model_config"]["top_k"] == 3
    assert seen["weights"].keys() == was["ema"].keys()
    assert all(torch.equal(seen["weights"][k], was["ema"][k]) for k in was["ema"])


INIT_REFUSALS = {  # the run's extra args (a callable of W) -> what the one line must say
    "another model": (lambda W: ["--model=mdlm", f"--init_from={W.ckpt}"], "holds a 'arlm' model"),
    "another vocabulary": (lambda W: [f"--dataset={W.other_vocab}", f"--init_from={W.ckpt}"], "another vocabulary"),
    "another network size": (lambda W: ["--n_embd=64", f"--init_from={W.ckpt}"], "n_embd=32"),
    "not a checkpoint": (lambda W: [f"--init_from={W.data}/meta.json"], "not a checkpoint"),
}


@pytest.mark.parametrize("case", list(INIT_REFUSALS))
def test_init_from_that_cannot_work_is_one_line(world, tmp_path, case):
    extra, says = INIT_REFUSALS[case]
    args = tiny_args(world, str(tmp_path / "run"), *extra(world))
    line = one_line_error(run("train.py", *args))
    print(f"\n{case}: {line}")
    assert says in line
    follow_every_advice(line, args, lambda a: run("train.py", *a), str(tmp_path),
                        must_advise=case in ("another model", "another network size"))


# ----------------------------------------------------------------------------- class 6: advice that works
def advised(line: str) -> list[list[tuple[str, str | None]]]:
    """The commands an error line advises: the text after its first '; ', cut into alternatives at ', ',
    ', or ' and ' or '. In each, 'without --key' / 'instead of --key' drops the key, '--key=value' sets it,
    a bare '--key' is a flag ('--out_dir': another, new folder). -> per alternative, its (key, value) changes:
    value None drops the key, '' is the bare flag."""
    advice = line.split("; ", 1)[1] if "; " in line else ""
    out = []
    for alternative in re.split(r",\s*(?:or\s+)?|\s+or\s+", advice):
        changes = [(key, None if drop else value) for drop, key, value in  # findall: '' where no value
                   re.findall(r"(without |instead of )?--(\w+)(?:=([^\s,;()]+))?", alternative)]
        if changes:
            out.append(changes)
    return out


def apply_advice(args: list[str], changes, tmp: str) -> list[str]:
    """args with one advised alternative applied."""
    args = list(args)
    for key, value in changes:
        args = [a for a in args if a.split("=")[0] != f"--{key}"]
        if (key, value) == ("out_dir", ""):  # "another --out_dir"
            value = f"{tempfile.mkdtemp(dir=tmp)}/new"
        if value is not None:
            args.append(f"--{key}={value}" if value else f"--{key}")
    return args


def follow_every_advice(line: str, args: list[str], run_it, tmp: str, snapshot: str | None = None,
                        must_advise: bool = True):
    """Run every alternative the line advises (each from the same starting folder: snapshot is copied back
    over the run's out_dir first) and check that each gets past the error: it succeeds."""
    alternatives = advised(line)
    assert alternatives or not must_advise, f"no advice to follow in: {line}"
    out = next((a.split("=", 1)[1] for a in args if a.startswith("--out_dir=")), None)
    for changes in alternatives:
        if snapshot:
            shutil.rmtree(out, ignore_errors=True)
            copy_run(snapshot, out)
        followed = apply_advice(args, changes, tmp)
        r = run_it(followed)
        rc, err = (r.rc, r.err) if hasattr(r, "rc") else (r.returncode, r.stderr)
        print(f"  followed {changes}: exit {rc}")
        assert rc == 0, (line, changes, followed, err[-2000:])


def _state(W, tmp: str, keep: tuple) -> str:
    """A copy of the tiny run holding only `keep` of its files."""
    out = copy_run(W.run, os.path.join(tmp, "state"))
    for name in RUN_FILES:
        if name not in keep:
            os.remove(os.path.join(out, name))
    return out


ADVICE = {  # (files the out_dir holds, the run's extra flags)
    "resume, empty folder": ((), ["--resume"]),
    "resume, only best.pt": (("best.pt", "log.jsonl"), ["--resume"]),
    "resume, only a log": (("log.jsonl",), ["--resume"]),
    "fresh, a run there": (RUN_FILES, []),
    "fresh, only best.pt": (("best.pt",), []),
    "init_from, a run there": (RUN_FILES, ["init_from"]),
    "resume with another init_from": (RUN_FILES, ["--resume", "init_from"]),
    "resume, weights only": (("weights_only", "log.jsonl"), ["--resume"]),
}


@pytest.mark.parametrize("case", list(ADVICE))
def test_train_advice_works_when_followed(world, tmp_path, case):
    """Each refusal about the out_dir names what to do instead; doing it (each alternative, from the same
    folder) works. An out_dir holding best.pt but no ckpt.pt once sent --resume and a fresh start to each other."""
    keep, flags = ADVICE[case]
    snapshot = _state(world, str(tmp_path), tuple(k for k in keep if k in RUN_FILES))
    if "weights_only" in keep:
        resave(world.ckpt, os.path.join(snapshot, "ckpt.pt"), lambda c: [c.pop("optimizer"), c.pop("rng")])
    flags = [f"--init_from={world.ckpt}" if f == "init_from" else f for f in flags]
    out = str(tmp_path / "run")
    copy_run(snapshot, out)
    args = [f"--dataset={world.data}", f"--out_dir={out}", *TINY, "--max_iters=6", "--eval_interval=2", *flags]
    line = one_line_error(run("train.py", *args))
    print(f"\n{case}: {line}")
    follow_every_advice(line, args, lambda a: run("train.py", *a), str(tmp_path), snapshot=snapshot)


@pytest.fixture
def row(star_data, tmp_path):
    """A tiny star config for bench/star_row.py (4 steps) -> (config, its out dir under out/, results folder)."""
    name = f"tinyguard_test_{os.getpid()}"
    config = tmp_path / f"{name}.py"
    config.write_text(f"dataset = {star_data('easy')!r}\nmodel = 'arlm'\nn_layer = 1\nn_head = 2\nn_embd = 32\n"
                      "batch_size = 16\nmax_iters = 4\nwarmup_iters = 1\neval_interval = 2\neval_examples = 16\n"
                      "eval_gen_examples = 8\neval_batch_size = 16\n")
    out_dir = os.path.join(ROOT, "out", f"{name}_seed5")
    yield SimpleNamespace(config=str(config), out_dir=out_dir, results=str(tmp_path / "rows"),
                          path=str(tmp_path / "rows" / f"{name}_seed5.json"))
    shutil.rmtree(out_dir, ignore_errors=True)


def star_row(R, *flags: str) -> subprocess.CompletedProcess:
    """`python bench/star_row.py ...` in a fork, its train.py and eval.py in forks of it (test_trust.run,
    inline=True): the exit status and stderr are the real ones, without three interpreter starts per call."""
    argv = [R.config, "--seed=5", f"--out={R.results}", *flags]
    r = run(os.path.join("bench", "star_row.py"), *argv, env={**os.environ, "OMP_NUM_THREADS": "1"}, inline=True)
    return subprocess.CompletedProcess(argv, r.rc, r.out, r.err)


def star_row_line(r) -> str:
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return r.stderr.strip().splitlines()[-1]


def test_star_row_advice_works_when_followed(row, tmp_path):
    """bench/star_row.py advised --resume after any failed training, also where nothing can be resumed (no
    checkpoint yet, or a finished run), and --no_train for a row whose run is gone. Each advice is followed."""
    # --resume before anything was trained: train.py finds no checkpoint; star_row must not say --resume again
    line = star_row_line(star_row(row, "--resume"))
    print(f"\nresume, nothing trained: {line}")
    follow_every_advice(line, ["--resume"], lambda a: star_row(row, *a), str(tmp_path))
    assert os.path.exists(row.path)
    # a finished run whose row was moved aside: training it again is refused; the advice is --no_train
    os.rename(row.path, row.path + ".moved")
    line = star_row_line(star_row(row))
    print(f"finished run, no row: {line}")
    assert "--resume" not in line.split("; ", 1)[-1]
    follow_every_advice(line, [], lambda a: star_row(row, *a), str(tmp_path))
    # a row whose run is gone: --no_train has nothing to evaluate, so it is not advised
    shutil.rmtree(row.out_dir)
    line = star_row_line(star_row(row))
    print(f"row without its run: {line}")
    assert "--no_train" not in line
    follow_every_advice(line, [], lambda a: star_row(row, *a), str(tmp_path), must_advise=False)
