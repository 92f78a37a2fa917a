"""Every model's Config fields are checked against the LIMITS its file declares, before anything runs.

    python -m pytest -q tests/test_limits.py

Walks every model file in models/ (a copied model is walked too), every field it declares, with values
just outside the range, NaN and infinities, and strings that are not a choice."""
import dataclasses
import math
import os
import subprocess
import sys

import pytest

import engine
import train
from conftest import ROOT, TINY
from data.loader import NanoError
from test_trust import run as fork_run


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    """`python <script> args` from the repo root, in a fork of this process (test_trust.run): the real exit
    status, stdout and stderr, without an interpreter start per case."""
    r = fork_run(script, *args)
    return subprocess.CompletedProcess([sys.executable, script, *args], r.rc, r.out, r.err)


def limited_fields():
    for name in engine.model_names():
        module = engine.model_module(name)
        for key, allowed in getattr(module, "LIMITS", {}).items():
            yield name, key, allowed


def outside(allowed, default) -> list:
    if all(isinstance(a, str) for a in allowed):
        return ["nonsense", "", allowed[0].upper() + "_"]
    lo, hi = allowed
    if isinstance(default, int):
        return [lo - 1, hi + 1]
    step = max(1e-3, (hi - lo) * 0.01)
    return [lo - step, hi + step, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("name", engine.model_names())
def test_every_field_declares_its_limits_and_the_defaults_pass(name):
    module = engine.model_module(name)
    assert isinstance(getattr(module, "LIMITS", None), dict), f"models/{name}.py has no LIMITS"
    fields = {f.name: f.default for f in dataclasses.fields(module.Config)}
    need = {k for k, v in fields.items() if k not in engine.DATA_FIELDS and not isinstance(v, bool)}
    assert need <= set(module.LIMITS), f"models/{name}.py: no LIMITS for {sorted(need - set(module.LIMITS))}"
    assert set(module.LIMITS) <= set(fields), f"models/{name}.py: LIMITS names no field {set(module.LIMITS) - set(fields)}"
    engine.check_limits(name, fields)  # every default is allowed


@pytest.mark.parametrize("name,key,allowed", list(limited_fields()),
                         ids=[f"{n}.{k}" for n, k, _ in limited_fields()])
def test_out_of_range_model_values_are_one_line_naming_the_key(name, key, allowed):
    module = engine.model_module(name)
    default = {f.name: f.default for f in dataclasses.fields(module.Config)}[key]
    for value in outside(allowed, default):  # as a config file may set it (NaN has no literal for --key=)
        config = {**train.get_config([f"--model={name}"], train.DEFAULTS), key: value}
        with pytest.raises(NanoError, match=rf"^{key}=.* must be "):
            engine.check_config(config, name)
    if not all(isinstance(a, str) for a in allowed):  # the ends themselves are allowed
        for end in allowed:
            engine.check_limits(name, {key: type(default)(end)})


def test_a_model_without_limits_or_with_a_field_missing_is_refused(monkeypatch):
    from models import mdlm
    monkeypatch.setattr(mdlm, "LIMITS", {k: v for k, v in mdlm.LIMITS.items() if k != "t_min"})
    with pytest.raises(NanoError, match="Config field 't_min' has no entry in LIMITS"):
        engine.check_limits("mdlm", {})
    monkeypatch.delattr(mdlm, "LIMITS")
    with pytest.raises(NanoError, match="models/mdlm.py has no LIMITS dict"):
        engine.check_limits("mdlm", {})


@pytest.mark.parametrize("argv,says", [
    (["--model=mdlm", "--t_min=2.0"], "t_min=2.0 must be in [1e-06, 1.0]"),
    (["--model=mdlm", "--schedule_eps=-1.0"], "schedule_eps=-1.0 must be in [0.0, 0.5]"),
    (["--model=ilm", "--stop_threshold=2.0"], "stop_threshold=2.0 must be in [0.01, 1.0]"),
    (["--model=ilm", "--gap_top_k=-3"], "gap_top_k=-3 must be in [0, 1000000]"),
])
def test_train_refuses_before_anything_is_written(star_data, tmp_path, argv, says):
    out = tmp_path / "run"
    r = run("train.py", f"--dataset={star_data()}", f"--out_dir={out}", *TINY[1:], "--max_iters=2", *argv)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip().split('error: ', 1)[1]}"]
    assert says in r.stderr
    assert not os.path.exists(out)


def test_sampler_overrides_are_checked_at_sample_time(tmp_path):
    ckpt = os.path.join(ROOT, "models", "pretrained", "mdlm_star_easy.pt")
    for argv, says in ((["--sample_eps=2.0"], "sample_eps=2.0 must be in [0.0, 0.5]"),
                       (["--order=backwards"], "order='backwards' must be one of 'random', 'confidence'")):
        r = run("sample.py", f"--ckpt={ckpt}", "--num_samples=1", *argv)
        assert r.returncode == 1 and "Traceback" not in r.stderr and says in r.stderr, r.stderr


def test_an_option_the_model_file_dropped_is_no_key_for_an_old_checkpoint(tmp_path):
    """A checkpoint written when the model file had an option it has since dropped still loads, but the option
    is refused on the command line (once it was accepted and silently did nothing)."""
    ckpt = engine.load_checkpoint(os.path.join(ROOT, "models", "pretrained", "mdlm_star_easy.pt"))
    ckpt["model_config"]["old_knob"] = "linear"
    engine.save_checkpoint(str(tmp_path / "old.pt"), ckpt)
    defaults = {"ckpt": "", "device": "cpu", "use_ema": True, "seed": 0}
    config, _, model, _ = engine.inference_setup([f"--ckpt={tmp_path}/old.pt"], defaults)
    assert "old_knob" not in config and not hasattr(model.config, "old_knob")
    with pytest.raises(NanoError, match="unknown config key 'old_knob'"):
        engine.inference_setup([f"--ckpt={tmp_path}/old.pt", "--old_knob=cubic"], defaults)
