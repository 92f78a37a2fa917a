"""The pretrained models that ship in models/pretrained/ load in sample.py and eval.py and still score what
the README says: every star_easy model on the first 500 test problems (regenerated here by
data/star/prepare.py's generator with its default seed, so no prepared data is needed).

    python -m pytest tests/test_pretrained.py -q
"""
import glob
import os

import pytest

import engine
import eval as evaluate_script
from data.star.prepare import write_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "models", "pretrained", "*.pt")))


@pytest.fixture(scope="module")
def star_easy_test(tmp_path_factory) -> str:
    d = str(tmp_path_factory.mktemp("star") / "easy")
    write_task("easy", d, {"train": 1, "val": 1, "test": 5000}, seed=42)  # prepare.py's split seeds: test is test
    return d


STAR_EASY = [p for p in SHIPPED if p.endswith("_star_easy.pt")]


def test_ilm_star_easy_is_shipped():
    assert os.path.join(ROOT, "models", "pretrained", "ilm_star_easy.pt") in STAR_EASY


@pytest.mark.parametrize("path", STAR_EASY, ids=[os.path.basename(p) for p in STAR_EASY])
def test_every_shipped_star_easy_model_solves_the_test_split(path, star_easy_test, tmp_path):
    r = evaluate_script.main([f"--ckpt={path}", f"--dataset={star_easy_test}", "--split=test", "--max_examples=500",
                              f"--out_dir={tmp_path}"])  # with the sampler settings shipped in the checkpoint
    assert r["examples"] == 500 and r["seq_acc"] >= 0.99


@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_every_shipped_model_is_weights_and_config_only(path):
    ckpt = engine.load_checkpoint(path)
    assert "optimizer" not in ckpt and "rng" not in ckpt and ckpt["ema"] is None
    assert os.path.getsize(path) < 5e6
    engine.model_from_checkpoint(ckpt, path)  # builds and loads
