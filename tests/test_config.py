"""The configurator: config files, --key=value overrides, and the errors a typo gets.

    python -m pytest tests/test_config.py -q
"""
import glob
import os

import pytest

import train
from data.loader import NanoError
from engine import config_files

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


def test_a_variant_is_its_base_plus_its_own_lines(tmp_path):
    base, mid, top = tmp_path / "base.py", tmp_path / "mid.py", tmp_path / "top.py"
    base.write_text("lr = 1e-3\nn_layer = 4\nname = 'base'\n")
    mid.write_text(f"base = {str(base)!r}\nn_layer = 6\n")
    top.write_text(f"base = {str(mid)!r}  # a chain: base -> mid -> top\nname = 'top'\n")
    assert cfg([str(mid)]) == {**DEFAULTS, "lr": 1e-3, "n_layer": 6, "name": "base"}
    assert cfg([str(top), "--lr=5e-4"]) == {**DEFAULTS, "lr": 5e-4, "n_layer": 6, "name": "top"}
    base.write_text("lr = 'fast'\n")  # an error inside a base names the base file
    with pytest.raises(NanoError, match=f"{base}: lr='fast' is a str, expected a float"):
        cfg([str(top)])
    # a shipped config as the base, by its path from the repo root
    mine = tmp_path / "mine.py"
    mine.write_text('base = "configs/ilm_star_easy.py"\nn_layer = 2\nout_dir = "out/mine"\n')
    easy = train.get_config([os.path.join(CONFIGS, "ilm_star_easy.py")], train.DEFAULTS)
    assert train.get_config([str(mine)], train.DEFAULTS) == {**easy, "n_layer": 2, "out_dir": "out/mine"}


@pytest.mark.parametrize("text, says", [
    ("base = 3\n", "line 1: base must be a string"),
    ("lr = 1e-3\nbase = 'configs/' + 'x.py'\n", "line 2: base must be a string"),  # read, not run: a literal
    ("base = 'configs/nope.py'\n", "line 1: base 'configs/nope.py' not found (a path from the repo root"),
    ("base = {self!r}\n", "its base files form a loop"),
    ("base = {other!r}\n", "its base files form a loop"),
])
def test_a_bad_base_is_one_line_naming_the_file(tmp_path, text, says):
    f, other = tmp_path / "c.py", tmp_path / "other.py"
    other.write_text(f"base = {str(f)!r}\n")  # c -> other -> c
    f.write_text(text.format(self=str(f), other=str(other)))
    with pytest.raises(NanoError) as e:
        cfg([str(f)])
    assert says in str(e.value) and str(f) in str(e.value) and "\n" not in str(e.value)


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
    lines = [line for path in config_files(os.path.join(CONFIGS, name)) for line in open(path)]  # with its bases
    assert any(line.startswith("phases = ") for line in lines), f"{name} must set phases (phases = [] for one)"


def test_the_default_run_is_the_speedrun_config_and_a_config_or_model_replaces_it():
    import train
    from engine import get_config
    assert train.with_default_config(["--max_iters=5"]) == [train.DEFAULT_CONFIG, "--max_iters=5"]
    assert train.with_default_config(["configs/mdlm_star_easy.py"]) == ["configs/mdlm_star_easy.py"]
    assert train.with_default_config(["--model=mdlm"]) == ["--model=mdlm"]
    c = get_config(train.with_default_config([]), train.DEFAULTS)
    assert (c["model"], c["optimizer"], c["batch_size"], c["neighbour_mix"], c["out_dir"]) == \
        ("ilm", "muon", 128, True, "out/default")
    c = get_config(["--model=ilm"], train.DEFAULTS)  # the defaults every config builds on are unchanged
    assert (c["optimizer"], c["batch_size"], c["neighbour_mix"], c["max_iters"]) == ("adamw", 32, False, 24000)
