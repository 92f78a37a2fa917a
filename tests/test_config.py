"""The configurator: config files, --key=value overrides, and the errors a typo gets.

    python -m pytest tests/test_config.py -q
"""
import glob
import os

import pytest

import train
from data.loader import NanoError

DEFAULTS = {"lr": 1e-3, "n_layer": 4, "name": "run", "compile": False, "init": None}


def cfg(argv, extra=None):
    return train.get_config(argv, DEFAULTS, (lambda c: extra or {}))


def test_overrides_are_typed_by_the_default():
    c = cfg(["--lr=3", "--n_layer=6", "--name=a=b", "--compile", "--init=[1, 2]"])
    assert c["lr"] == 3.0 and isinstance(c["lr"], float)  # int -> float is allowed
    assert c["n_layer"] == 6
    assert c["name"] == "a=b"  # values may contain '='
    assert c["compile"] is True  # a bare --flag means True
    assert c["init"] == [1, 2]  # a None default accepts anything


def test_strings_need_no_quotes_and_code_is_not_run():
    assert cfg(["--name=star/hard"])["name"] == "star/hard"
    assert cfg(["--name=__import__('os').getcwd()"])["name"] == "__import__('os').getcwd()"  # a literal string


def test_unknown_key_suggests_the_closest():
    with pytest.raises(NanoError, match="unknown config key 'n_layr'; did you mean 'n_layer'"):
        cfg(["--n_layr=3"])


def test_wrong_type_names_key_value_and_type():
    with pytest.raises(NanoError, match=r"n_layer=3.5 is a float, expected a int"):
        cfg(["--n_layer=3.5"])
    with pytest.raises(NanoError, match=r"compile=1 is a int, expected a bool"):
        cfg(["--compile=1"])


def test_config_file_is_executed_and_checked(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("import math\nlr = 2e-4 * math.sqrt(4)\nn_layer = 2\n_scratch = 5\n")
    c = cfg([str(f), "--n_layer=8"])
    assert c["lr"] == pytest.approx(4e-4) and c["n_layer"] == 8  # the command line wins over the file
    f.write_text("n_layers = 2\n")
    with pytest.raises(NanoError, match=f"{f}: unknown config key 'n_layers'; did you mean 'n_layer'"):
        cfg([str(f)])
    f.write_text("n_layer = '2'\n")
    with pytest.raises(NanoError, match=f"{f}: n_layer='2' is a str, expected a int"):
        cfg([str(f)])


def test_config_file_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("lr = 1e-3\nn_layer = = 2\n")
    with pytest.raises(NanoError, match=f"{f}, line 2: syntax error"):
        cfg([str(f)])
    with pytest.raises(NanoError, match="config file nowhere.py not found"):
        cfg(["nowhere.py"])


def test_model_config_fields_are_keys():
    c = train.get_config(["--model=arlm", "--n_embd=64", "--temperature=0.5"], train.DEFAULTS)
    assert c["n_embd"] == 64 and c["temperature"] == 0.5
    with pytest.raises(NanoError, match="model 'nope' not found: there is no models/nope.py"):
        train.get_config(["--model=nope"], train.DEFAULTS)


CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONFIGS, "*.py"))))
def test_every_shipped_config_loads(name):
    # a renamed key or a typo in a config file would otherwise surface only when someone runs it
    c = train.get_config([os.path.join(CONFIGS, name)], train.DEFAULTS)
    assert c["model"] == name.split("_")[0] and c["out_dir"].startswith("out/")


def test_the_default_run_is_ilm_star_easy():
    # README: a bare `python train.py` trains what configs/ilm_star_easy.py trains (both phases)
    bare = train.get_config([], train.DEFAULTS)
    easy = train.get_config([os.path.join(CONFIGS, "ilm_star_easy.py")], train.DEFAULTS)
    skip = {"out_dir", "eval_interval", "best_metric"}  # where it writes and what it keeps, not what it learns
    assert {k: v for k, v in bare.items() if k not in skip} == {k: v for k, v in easy.items() if k not in skip}


@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONFIGS, "*.py"))))
def test_every_shipped_config_sets_its_phases(name):
    # the default run has a second phase; a config that left `phases` out would inherit it unnoticed
    with open(os.path.join(CONFIGS, name)) as f:
        assert any(line.startswith("phases = ") for line in f), f"{name} must set phases (phases = [] for one)"
