"""Every malformed prepared dataset is one NanoError line naming the file (and key) and the fix, raised when
the data is opened, before any training step.

    python -m pytest tests/test_bad_data.py -q
"""
import json
import os
import re
import shutil

import numpy as np
import pytest

from data.loader import Dataset, NanoError
from test_trust import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELETE = object()


def meta(**changes):
    """A mutation that sets (or, with DELETE, removes) meta.json fields; 'a.b' sets a nested field."""
    def mutate(d):
        path = os.path.join(d, "meta.json")
        m = json.load(open(path))
        for key, value in changes.items():
            *outer, last = key.split(".")
            node = m
            for k in outer:
                node = node[k]
            if value is DELETE:
                del node[last]
            else:
                node[last] = value
        json.dump(m, open(path, "w"))
    return mutate


def raw_meta(text: bytes):
    return lambda d: open(os.path.join(d, "meta.json"), "wb").write(text)


def both(*mutations):
    return lambda d: [m(d) for m in mutations]


def val_tokens(fn):
    """A mutation of val.bin's uint16 tokens: fn(array) -> new array."""
    def mutate(d):
        path = os.path.join(d, "val.bin")
        fn(np.fromfile(path, dtype=np.uint16)).astype(np.uint16).tofile(path)
    return mutate


def val_prompt_lens(fn):
    def mutate(d):
        path = os.path.join(d, "val_prompt_len.bin")
        fn(np.fromfile(path, dtype=np.uint16)).astype(np.uint16).tofile(path)
    return mutate


def remove(name):
    return lambda d: os.remove(os.path.join(d, name))


def pad_tail(a):  # row 0 keeps 24 real tokens, fewer than its 26-token prompt
    a[24:34] = 0
    return a


def set0(value):
    def fn(a):
        a[0] = value
        return a
    return fn


# the star fixture's val split: 64 rows of width 34 (2176 uint16 tokens), prompts 26, targets 8, vocab 24
TO_STREAM = meta(layout="stream", row_width=DELETE, max_prompt_len=DELETE, max_target_len=DELETE,
                 splits={"train": {"tokens": 2048 * 34}, "val": {"tokens": 64 * 34}, "test": {"tokens": 64 * 34}})
EMPTY_VAL = both(val_tokens(lambda a: a[:0]), val_prompt_lens(lambda a: a[:0]), meta(**{"splits.val.rows": 0}))
M = "{dir}/meta.json"
V = "{dir}/val.bin"
P = "{dir}/val_prompt_len.bin"
CASES = [
    # meta.json as a whole
    ("meta_is_list", raw_meta(b"[1, 2]"),
     M + r": holds an array, not a JSON object of fields \(format_version, layout, ...\)"),
    ("meta_is_number", raw_meta(b"42"), M + ": holds a number, not a JSON object"),
    ("meta_is_string", raw_meta(b'"star"'), M + ": holds a string, not a JSON object"),
    ("meta_is_null", raw_meta(b"null"), M + ": holds null, not a JSON object"),
    ("meta_is_folder", both(remove("meta.json"), lambda d: os.mkdir(f"{d}/meta.json")),
     M + r" cannot be read \(Is a directory\)"),
    ("meta_not_utf8", raw_meta(b'{"name": "caf\xe9"}'), M + r" is not UTF-8 text \(byte 0xe9 at offset 13\)"),
    ("meta_not_json", raw_meta(b"{not json"), M + " is not valid JSON"),
    ("meta_missing_fields", meta(vocab_size=DELETE, dtype=DELETE), M + " lacks vocab_size, dtype;"),
    ("meta_missing_itos", meta(itos=DELETE), M + " lacks itos or tokenizer;"),
    ("format_version", meta(format_version=2), M + ": format_version is 2, this code reads 1"),
    ("layout", meta(layout="columns"), M + ": layout must be 'rows' or 'stream', not 'columns'"),
    # dtype and vocabulary
    ("dtype_float32", meta(dtype="float32"), M + ": dtype must be 'uint16' or 'uint32', not 'float32'"),
    ("dtype_int8", meta(dtype="int8"), M + ": dtype must be 'uint16' or 'uint32', not 'int8'"),
    ("dtype_banana", meta(dtype="banana"), M + ": dtype must be 'uint16' or 'uint32', not 'banana'"),
    ("dtype_number", meta(dtype=16), M + ": dtype must be 'uint16' or 'uint32', not 16"),
    ("dtype_vs_file_rows", meta(dtype="uint32"),
     V + r" holds 32 rows but meta.json says 64 \(truncated, or wrong dtype"),
    ("dtype_vs_file_stream", both(TO_STREAM, meta(dtype="uint32")),
     V + r" holds 1088 tokens but meta.json's splits.val.tokens says 2176 \(truncated, or wrong dtype"),
    ("vocab_zero", meta(vocab_size=0), M + ": vocab_size must be a positive integer, not 0"),
    ("vocab_negative", meta(vocab_size=-24), M + ": vocab_size must be a positive integer, not -24"),
    ("vocab_float", meta(vocab_size=24.0), M + r": vocab_size must be a positive integer, not 24\.0"),
    ("vocab_string", meta(vocab_size="24"), M + ": vocab_size must be a positive integer, not '24'"),
    ("vocab_bool", meta(vocab_size=True), M + ": vocab_size must be a positive integer, not True"),
    ("vocab_too_big_for_uint16", meta(vocab_size=70000),
     M + r": vocab_size 70000 does not fit dtype uint16 \(ids up to 65535; needs uint32\)"),
    # special ids and itos
    ("pad_is_vocab_size", meta(pad=24), M + r": pad must be null or an id in \[0, vocab_size=24\), not 24"),
    ("mask_negative", meta(mask=-1), M + r": mask must be null or an id in \[0, vocab_size=24\), not -1"),
    ("bos_string", meta(bos="1"), M + r": bos must be null or an id in \[0, vocab_size=24\), not '1'"),
    ("eos_float", meta(eos=2.0), M + r": eos must be null or an id in \[0, vocab_size=24\), not 2\.0"),
    ("pad_bool", meta(pad=False), M + r": pad must be null or an id in \[0, vocab_size=24\), not False"),
    ("itos_short", lambda d: meta(itos=json.load(open(f"{d}/meta.json"))["itos"][:-1])(d),
     M + ": itos must be a list of vocab_size=24 strings, it has 23 entries"),
    ("itos_not_list", meta(itos="abc"), M + ": itos must be a list of vocab_size=24 strings, it has a str"),
    ("tokenizer_unknown", meta(itos=DELETE, tokenizer="llama"), M + ": tokenizer must be 'gpt2'.*not 'llama'"),
    ("joiner_dash", meta(joiner="-"),
     M + r': joiner must be "" \(decode concatenates itos entries: characters\) or " " .*, not \'-\''),
    ("joiner_two_spaces", meta(joiner="  "), M + ': joiner must be "" .*, not \'  \''),
    ("joiner_null", meta(joiner=None), M + ': joiner must be "" .*, not None'),
    ("joiner_number", meta(joiner=0), M + ': joiner must be "" .*, not 0'),
    # rows layout
    ("row_width_missing", meta(row_width=DELETE), M + " lacks row_width;"),
    ("row_width_zero", meta(row_width=0), M + ": row_width must be a positive integer, not 0"),
    ("row_width_negative", meta(row_width=-34), M + ": row_width must be a positive integer, not -34"),
    ("row_width_float", meta(row_width=34.5), M + r": row_width must be a positive integer, not 34\.5"),
    ("row_width_string", meta(row_width="34"), M + ": row_width must be a positive integer, not '34'"),
    ("max_prompt_len_over_row_width", meta(max_prompt_len=40),
     M + r": max_prompt_len must be an integer in \[0, row_width=34\], not 40"),
    ("prompt_len_over_row_width", both(meta(max_prompt_len=DELETE), val_prompt_lens(set0(40))),
     P + ": row 0 has prompt length 40 but meta.json's row_width is 34"),
    ("prompt_len_over_max_prompt_len", val_prompt_lens(set0(30)),
     P + ": row 0 has prompt length 30 but meta.json's max_prompt_len is 26"),
    ("prompt_len_over_real_length", val_tokens(pad_tail),
     P + ": row 0 has prompt length 26 but " + V + " row 0 holds only 24 tokens before pad"),
    ("target_over_max_target_len", meta(max_target_len=7),
     V + ": row 0 has a target of 8 tokens but meta.json's max_target_len is 7"),
    ("prompt_len_file_missing", remove("val_prompt_len.bin"),
     P + " not found, but meta.json's max_prompt_len is 26 \\(the rows have prompts\\)"),
    ("prompt_len_file_odd_size", lambda d: open(f"{d}/val_prompt_len.bin", "ab").write(b"\0"),
     P + r" has 129 bytes, expected 128 \(one uint16 per row of " + V + r"\)"),
    # splits
    ("splits_list", meta(splits=["train", "val"]), M + ": splits must be an object like"),
    ("splits_empty", meta(splits={}), M + ": splits must be an object like"),
    ("split_not_object", meta(**{"splits.val": 64}), M + ": splits.val must be an object like"),
    ("split_rows_negative", meta(**{"splits.val.rows": -1}),
     M + r": splits.val.rows must be a count \(an integer >= 0\), not -1"),
    ("split_tokens_string", meta(**{"splits.val.tokens": "2176"}), M + ": splits.val.tokens must be a count"),
    ("split_file_missing", remove("val.bin"), V + " not found; run "),
    ("split_empty_rows", EMPTY_VAL, V + " holds no rows: the val split is empty; .* with a non-empty val split"),
    ("split_empty_file", val_tokens(lambda a: a[:0]), V + " holds 0 rows but meta.json says 64"),
    ("split_empty_stream", both(TO_STREAM, val_tokens(lambda a: a[:0]), meta(**{"splits.val.tokens": 0})),
     V + r" has 0 tokens, too few for one window of block_size=8 \(needs 9\); lower block_size or "),
    ("stream_shorter_than_block", both(TO_STREAM, val_tokens(lambda a: a[:8]), meta(**{"splits.val.tokens": 8})),
     V + r" has 8 tokens, too few for one window of block_size=8 \(needs 9\)"),
    ("stream_tokens_mismatch", both(TO_STREAM, meta(**{"splits.val.tokens": 999})),
     V + " holds 2176 tokens but meta.json's splits.val.tokens says 999"),
]


@pytest.fixture
def data_copy(star_data, tmp_path):
    d = str(tmp_path / "easy")
    shutil.copytree(star_data(), d)
    return d


def expected(regex: str, d: str) -> str:
    return regex.replace("{dir}", re.escape(d))


def test_good_data_loads(data_copy):
    """The unmodified fixture, and the same tokens as a stream, pass every check (so the cases below fail
    only for their own mutation)."""
    assert Dataset(data_copy, "val", 8).n_items == 64
    TO_STREAM(data_copy)
    assert Dataset(data_copy, "val", 8).n_items == 64 * 34 - 8


def test_a_split_the_data_does_not_have_is_named(data_copy):
    with pytest.raises(NanoError) as e:
        Dataset(data_copy, "vall", 8)
    assert str(e.value) == f"split 'vall': {data_copy} has train, val, test (its meta.json's splits)"


@pytest.mark.parametrize("name,mutate,regex", CASES, ids=[c[0] for c in CASES])
def test_bad_data(data_copy, name, mutate, regex):
    mutate(data_copy)
    with pytest.raises(NanoError, match=expected(regex, data_copy)) as e:
        Dataset(data_copy, "val", block_size=8)
    msg = str(e.value)
    assert "\n" not in msg and "prepare.py" in msg, msg
    print(f"{name}: {msg}")


SUBPROCESS_CASES = ["meta_is_list", "dtype_banana", "pad_is_vocab_size", "split_empty_rows"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_data_from_the_command_line(data_copy, tmp_path, name):
    """train.py prints the one line `error: ...` and exits with status 1 before any step, no traceback."""
    _, mutate, regex = next(c for c in CASES if c[0] == name)
    mutate(data_copy)
    r = run("train.py", f"--dataset={data_copy}", "--max_iters=1", f"--out_dir={tmp_path / 'out'}",
            env={**os.environ, "OMP_NUM_THREADS": "1"})  # in a fork of pytest: the real exit status and stderr
    assert r.rc == 1 and "Traceback" not in r.err, r.err
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.match("error: " + expected(regex, data_copy), errors[0]), r.err
    assert not os.path.exists(tmp_path / "out" / "ckpt.pt")


@pytest.mark.parametrize("change", ["emptied", "truncated", "removed", "grown"])
def test_data_rewritten_under_a_running_reader_is_one_line(data_copy, change):
    """prepare.py run again while a training reads the data: the next batch is one line, not numpy's traceback."""
    data = Dataset(data_copy, "train")
    data.get(np.arange(4))  # reads fine before
    path = os.path.join(data_copy, "train.bin")
    if change == "removed":
        os.remove(path)
    else:
        size = {"emptied": 0, "truncated": os.path.getsize(path) // 2, "grown": os.path.getsize(path) + 68}[change]
        with open(path, "r+b") as f:
            f.truncate(size)
    with pytest.raises(NanoError, match=r"train.bin changed while this run reads it \(\d+ bytes, it had 139264\): was "
                                        r"the data prepared again meanwhile\? Once that is done, run again \(a "
                                        r"training with --resume\)"):
        data.get(np.arange(4))
