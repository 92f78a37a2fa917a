"""eval.py: whole-split results named after checkpoint file, dataset and split, and the generative NLL of XLM
Table 2 scored the same way for every sample and the corpus (specials stripped, bos prepended, every real
token scored, the first included).

    python -m pytest tests/test_eval.py -q
"""
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import eval as evaluate_script
import train

V, PAD, BOS, EOS = 12, 0, 1, 2  # a tiny LM1B-like vocabulary: rows are `bos w1..wn eos pad...`


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("sent") / "sent"
    os.makedirs(d)
    rng = np.random.default_rng(0)
    width, splits = 10, {}
    for split, n in (("train", 256), ("val", 32), ("test", 32)):
        rows = np.full((n, width), PAD, dtype=np.uint16)
        lens = rng.integers(1, width - 1, n)
        for i, k in enumerate(lens):
            start = rng.integers(3, V - 1)
            rows[i, :k + 2] = [BOS, *[3 + (start + j) % (V - 3) for j in range(k)], EOS]  # counting sentences
        rows.tofile(d / f"{split}.bin")
        splits[split] = {"rows": n, "tokens": int((rows != PAD).sum())}
    meta = {"format_version": 1, "name": "sentences", "layout": "rows", "vocab_size": V, "dtype": "uint16",
            "pad": PAD, "bos": BOS, "eos": EOS, "mask": None, "row_width": width,
            "itos": ["<pad>", "<bos>", "<eos>"] + [str(i) for i in range(V - 3)], "splits": splits}
    (d / "meta.json").write_text(json.dumps(meta))
    return str(d)


def tiny_run(data: str, out: str, model: str) -> str:
    train.main([f"--dataset={data}", f"--out_dir={out}", f"--model={model}", "--max_iters=40", "--eval_interval=40",
                "--n_layer=1", "--n_head=2", "--n_embd=32", "--batch_size=32", "--eval_examples=32",
                "--learning_rate=3e-3", "--warmup_iters=2", "--phases=[]"])
    return os.path.join(out, "ckpt.pt")


def test_score_counts_every_real_token_and_the_end(sentences, tmp_path):
    import engine
    ckpt = engine.load_checkpoint(tiny_run(sentences, str(tmp_path / "arlm"), "arlm"))
    ref = engine.model_from_checkpoint(ckpt).eval()
    meta = ckpt["meta"]
    sample = torch.tensor([5, 6, 7])
    got = evaluate_script.score(ref, [sample], meta, "cpu", 8)
    with torch.no_grad():  # by hand: bos 5 6 7 -> predict 5, 6, 7 and then eos
        x = torch.tensor([[BOS, 5, 6, 7]])
        logp = F.log_softmax(ref.head(ref.trunk(x, torch.arange(4)[None])).float(), -1)[0]
    want = -(logp[0, 5] + logp[1, 6] + logp[2, 7] + logp[3, EOS]).item() / 4
    assert got == pytest.approx(want, rel=1e-5)
    # specials in a sample are stripped first: the same text with bos/eos/pad around it scores the same
    assert evaluate_script.score(ref, [torch.tensor([BOS, 5, 6, 7, EOS, PAD])], meta, "cpu", 8) == pytest.approx(got)


def test_unigram_entropy_counts_no_specials():
    meta = {"vocab_size": V, "pad": PAD, "bos": BOS, "eos": EOS, "mask": None}
    strip = evaluate_script.strip_specials
    assert strip(torch.tensor([BOS, 4, 4, 5, EOS, PAD, PAD, -1, V]), meta).tolist() == [4, 4, 5]
    h = evaluate_script.unigram_entropy(strip(torch.tensor([BOS, 4, 5, EOS, PAD, PAD]), meta))
    assert h == pytest.approx(math.log(2))


def test_length_stats_compare_two_length_distributions():
    same = evaluate_script.length_stats([3, 5, 9, 1], [1, 3, 5, 9])
    assert same["len_w1"] == 0 and same["gen_mean_len"] == same["corpus_mean_len"] == 4.5
    assert same["gen_len_quartiles"] == [3, 5, 9]  # the 25/50/75% order statistics
    # every sample 2 tokens longer: W1 = 2, whatever the order; a single outlier of +8 costs 8/4
    assert evaluate_script.length_stats([11, 3, 7, 5], [1, 3, 5, 9])["len_w1"] == 2
    assert evaluate_script.length_stats([1, 3, 5, 17], [1, 3, 5, 9])["len_w1"] == 2


def test_generative_eval_and_results_files(sentences, tmp_path):
    ref = tiny_run(sentences, str(tmp_path / "ref"), "arlm")
    ckpt = tiny_run(sentences, str(tmp_path / "mdlm"), "mdlm")
    r = evaluate_script.main([f"--ckpt={ckpt}", "--split=val", "--gen_samples=8", f"--ref_ckpt={ref}",
                              "--gen_length=8", "--steps=8", "--batch_size=8"])
    assert r["nll_kind"] == "bound" and r["precision"] == "float32" and r["dataset"] == sentences
    assert 0 < r["gen_nll"] < 10 and 0 < r["corpus_nll"] < r["gen_nll"] + 5 and r["gen_samples"] == 8
    assert 0 < r["corpus_mean_len"] <= 8 and len(r["gen_len_quartiles"]) == 3 and r["len_w1"] >= 0
    name = f"ckpt_{sentences.strip(os.sep).replace(os.sep, '-')}_val"  # <checkpoint file>_<dataset>_<split>
    out = os.path.dirname(ckpt)
    with open(os.path.join(out, f"results_{name}.json")) as f:
        assert json.load(f)["gen_nll"] == pytest.approx(r["gen_nll"])
    with open(os.path.join(out, f"samples_{name}.jsonl")) as f:
        samples = [json.loads(l) for l in f]
    assert len(samples) == 8 and all(PAD not in s["ids"] and BOS not in s["ids"] for s in samples)
    # a second split is a second file, not an overwrite
    evaluate_script.main([f"--ckpt={ckpt}", "--split=test"])
    assert os.path.exists(os.path.join(out, f"results_{name}.json"))
    assert os.path.exists(os.path.join(out, f"results_ckpt_{sentences.strip(os.sep).replace(os.sep, '-')}_test.json"))


def test_mlm_reports_no_perplexity(sentences, tmp_path):
    r = evaluate_script.main([f"--ckpt={tiny_run(sentences, str(tmp_path / 'mlm'), 'mlm')}", "--split=val"])
    assert r["nll_kind"] == "none" and "nll" not in r and "ppl" not in r and r["loss"] > 0
