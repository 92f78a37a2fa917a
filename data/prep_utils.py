"""
What the GPT-2 text prepare scripts (data/shakespeare, data/lm1b, data/openwebtext) share: load text with
Hugging Face `datasets` (a hub dataset or local files), carve val/test splits, tokenise with `Dataset.map`,
write each split as a .bin memmap in the `stream` or `rows` layout, and write meta.json (data/FORMAT.md).

Tokenising stores each text's raw GPT-2 ids (no specials, untruncated); the layout is assembled when a
split is written, in vectorised numpy over batches of rows, so one tokenised dataset serves both layouts.
"""
import argparse
import json
import os

import numpy as np
from tqdm import tqdm

FORMAT_VERSION = 1
WRITE_BATCH = 8192  # texts per write step (an OpenWebText batch is ~9M tokens)
LOCAL_BUILDERS = {".txt": "text", ".text": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".lz4"}


def dtype_for(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 65535 else "uint32"


def add_source_args(parser: argparse.ArgumentParser, dataset: str, revision=None):
    """The flags every hub recipe takes: where the text comes from, where the output goes, parallelism."""
    parser.add_argument("--dataset", default=dataset, help="Hugging Face hub dataset name (default %(default)s)")
    parser.add_argument("--revision", default=revision, help="hub branch/tag/commit (default %(default)s)")
    parser.add_argument("--data_files", default=None,
                        help="use local files instead of the hub: a file or a folder of .txt (one example per line), "
                             ".json/.jsonl or .parquet, optionally compressed. A folder's files named train*/test*/"
                             "validation* become those splits; a single file is all train")
    parser.add_argument("--text_column", default="text", help="column holding the text (default %(default)s)")
    parser.add_argument("--out", default=None, help="output folder (default: next to the script, see its docstring)")
    parser.add_argument("--num_proc", type=int, default=min(8, os.cpu_count() or 1),
                        help="tokenising processes (default %(default)s)")
    parser.add_argument("--cache_dir", default=None, help="datasets cache (default: HF_DATASETS_CACHE)")


def _builder_for(path: str) -> str:
    files = [path] if os.path.isfile(path) else [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs
                                                  if not f.startswith(".")]
    kinds = set()
    for f in files:
        suffixes = [s.lower() for s in os.path.basename(f).split(".")[1:]]
        suffixes = ["." + s for s in suffixes if "." + s not in COMPRESSIONS]
        if suffixes and suffixes[-1] in LOCAL_BUILDERS:
            kinds.add(LOCAL_BUILDERS[suffixes[-1]])
    if len(kinds) != 1:
        raise SystemExit(f"--data_files {path}: need files of one kind among {sorted(LOCAL_BUILDERS)} "
                         f"(found {sorted(kinds) or 'none'})")
    return kinds.pop()


def load_text(args):
    """DatasetDict from --data_files (datasets' builtin text/json/parquet loaders) or from the hub."""
    unreachable = not args.data_files and not hub_reachable()
    if unreachable:  # read the cache only, at once (not after minutes of retries)
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"  # before datasets is imported
    import datasets
    if args.data_files:
        path = args.data_files
        if not os.path.exists(path):
            raise SystemExit(f"--data_files {path}: no such file or folder")
        builder = _builder_for(path)
        if os.path.isdir(path):
            return datasets.load_dataset(builder, data_dir=path, cache_dir=args.cache_dir)
        return datasets.load_dataset(builder, data_files=path, cache_dir=args.cache_dir)
    try:
        return datasets.load_dataset(args.dataset, revision=args.revision, cache_dir=args.cache_dir)
    except ConnectionError as e:  # offline and not in the cache ("Couldn't reach '<name>' on the Hub (...)")
        from data.loader import NanoError
        why = f"{args.dataset}: the Hugging Face hub does not answer from here and no copy is cached" if unreachable \
            else str(e)
        raise NanoError(f"{why}; offline, prepare from local files instead: --data_files=<a .txt/.jsonl/.parquet "
                        f"file or a folder of them> (see --help)")
    except RuntimeError as e:
        if "scripts are no longer supported" not in str(e):
            raise
        raise SystemExit(
            f"{e}\n{args.dataset} (at revision {args.revision or 'main'}) is a loading script, which datasets>=4 "
            "refuses. Try `--revision refs/convert/parquet` (the hub's automatic parquet export; it holds only the "
            "first ~5 GB of very large datasets, check the row counts printed), another parquet copy via "
            "--dataset, or download the files and pass --data_files.")


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connect; True when that cannot be told here (offline mode set
    already, or a proxy in between)."""
    if os.environ.get("HF_HUB_OFFLINE") or any(os.environ.get(k) for k in (
            "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    import socket
    from urllib.parse import urlparse
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def make_splits(dsd, val_size, seed: int = 2357):
    """train/val/test. A split the data already has is kept ('validation' becomes val); a missing val is
    carved from train first (the nanoGPT call: train_test_split(test_size=val_size, seed=2357)), then a
    missing test of the same size as val. val_size: a fraction of train, or a number of examples."""
    import datasets
    train = dsd["train"]
    val = dsd["validation"] if "validation" in dsd else dsd.get("val")
    test = dsd.get("test")
    if val is None:
        s = train.train_test_split(test_size=val_size, seed=seed, shuffle=True)
        train, val = s["train"], s["test"]
    if test is None:
        s = train.train_test_split(test_size=len(val), seed=seed, shuffle=True)
        train, test = s["train"], s["test"]
    return datasets.DatasetDict(train=train, val=val, test=test)


def size_arg(s: str):
    """--val_size: '0.0005' is a fraction of train, '5000' a number of examples."""
    v = float(s)
    return int(v) if v >= 1 else v


def _encode_batch(batch, text_column, preprocess):
    from data.gpt2 import get_encoding  # cached per process
    texts = [t or "" for t in batch[text_column]]  # a missing text (None) counts as empty
    if preprocess is not None:
        texts = [preprocess(t) for t in texts]
    enc = get_encoding()
    # ordinary: "<|endoftext|>" in the text is plain text. A loop, not encode_ordinary_batch: its thread
    # pool costs more than it saves on sentence-length texts (2x slower on LM1B-like data), and the
    # parallelism comes from num_proc.
    ids = [enc.encode_ordinary(t) for t in texts]
    return {"ids": ids, "len": [len(x) for x in ids]}


def tokenize(dsd, text_column: str = "text", num_proc: int = 1, preprocess=None):
    """Every split -> columns 'ids' (the GPT-2 ids of each text, no specials, untruncated) and 'len'."""
    import datasets
    from data.gpt2 import get_encoding
    get_encoding()  # fail here, once, with the install hint, rather than in every worker
    for name, split in dsd.items():
        if text_column not in split.column_names:
            raise SystemExit(f"split {name!r} has no column {text_column!r} (it has {split.column_names}); "
                             "set --text_column")
    features = datasets.Features({"ids": datasets.Sequence(datasets.Value("uint16")),  # GPT-2 ids < 65536
                                  "len": datasets.Value("int32")})
    return datasets.DatasetDict({
        name: split.map(_encode_batch, batched=True, batch_size=1000, remove_columns=split.column_names,
                        features=features, num_proc=num_proc if num_proc > 1 else None,
                        fn_kwargs=dict(text_column=text_column, preprocess=preprocess),
                        desc=f"tokenizing {name}")
        for name, split in dsd.items()})


def _batches(ds):
    """(flat ids, lengths) of consecutive batches of texts, read straight from Arrow (no per-row Python)."""
    arrow = ds.with_format("arrow")
    for i in range(0, len(ds), WRITE_BATCH):
        col = arrow[i:i + WRITE_BATCH]["ids"].combine_chunks()
        yield col.flatten().to_numpy(zero_copy_only=False), np.diff(col.offsets.to_numpy())


def _write(path, ds, dtype, total, assemble, vocab_size, desc):
    """Fill a memmap of `total` ids batch by batch; assemble(flat, lens) -> that batch's ids."""
    if total == 0:
        open(path, "wb").close()
        return np.zeros(0, dtype=np.int64)
    arr = np.memmap(path, dtype=dtype, mode="w+", shape=(total,))
    all_lens, pos = [], 0
    with tqdm(total=len(ds), desc=desc, unit="texts") as bar:
        for flat, lens in _batches(ds):
            out = assemble(flat, lens)
            if out.size and int(out.max()) >= vocab_size:
                raise ValueError(f"{path}: id {int(out.max())} >= vocab_size {vocab_size}")
            arr[pos:pos + out.size] = out
            pos += out.size
            all_lens.append(lens)
            bar.update(len(lens))
    assert pos == total, (pos, total)
    arr.flush()
    del arr
    return np.concatenate(all_lens)


def write_stream(path, ds, eos: int, vocab_size: int):
    """stream layout: every text's ids followed by eos, all concatenated (nanoGPT).
    Returns (tokens written, text lengths)."""
    total = _num_ids(ds) + len(ds)

    def assemble(flat, lens):
        out = np.empty(flat.size + lens.size, dtype=np.int64)
        ends = np.cumsum(lens + 1) - 1  # where each text's eos goes
        is_eos = np.zeros(out.size, dtype=bool)
        is_eos[ends] = True
        out[is_eos] = eos
        out[~is_eos] = flat
        return out

    lens = _write(path, ds, dtype_for(vocab_size), total, assemble, vocab_size, f"writing {os.path.basename(path)}")
    return total, lens


def write_rows(path, ds, width: int, bos: int, eos: int, pad: int, vocab_size: int):
    """rows layout: one text per row, `bos + ids + eos` then pad up to `width`. A text longer than
    width - 2 keeps its first width - 2 ids and still ends in eos (MDLM's choice), so every row holds exactly
    one bos (at 0) and one eos. Returns (tokens written, text lengths before truncation)."""
    keep = width - 2

    def assemble(flat, lens):
        n = lens.size
        starts = np.repeat(np.cumsum(lens) - lens, lens)
        pos_in_text = np.arange(flat.size) - starts
        kept = np.minimum(lens, keep)
        rows = np.full((n, width), pad, dtype=np.int64)
        rows[:, 0] = bos
        body = np.arange(keep)[None, :] < kept[:, None]  # (n, keep): where each row's ids go, in row order
        rows[:, 1:1 + keep][body] = flat[pos_in_text < keep]
        rows[np.arange(n), kept + 1] = eos
        return rows.reshape(-1)

    lens = _write(path, ds, dtype_for(vocab_size), len(ds) * width, assemble, vocab_size,
                  f"writing {os.path.basename(path)}")
    return len(ds) * width, lens


def _num_ids(ds) -> int:
    return int(ds.select_columns(["len"]).with_format("numpy")[:]["len"].sum()) if len(ds) else 0


def length_report(lens: np.ndarray, width: int = 0) -> str:
    """Text-length percentiles in tokens (and, for rows, how many texts the row width truncates)."""
    if lens.size == 0:
        return "no texts"
    q = np.percentile(lens, [50, 90, 99, 99.9, 100]).astype(int)
    s = f"tokens per text: mean {lens.mean():.1f}, p50 {q[0]}, p90 {q[1]}, p99 {q[2]}, p99.9 {q[3]}, max {q[4]}"
    if width:
        cut = int((lens > width - 2).sum())
        s += f"; cut to fit {width} with bos/eos: {cut:,} of {lens.size:,} ({cut / lens.size:.3%})"
    return s


def start_output(out_dir: str):
    """Create the folder and remove a previous meta.json: until the new one is written at the end, the
    loader reports the dataset as not prepared rather than reading half-written .bin files."""
    os.makedirs(out_dir, exist_ok=True)
    meta = os.path.join(out_dir, "meta.json")
    if os.path.exists(meta):
        os.remove(meta)


def write_meta(out_dir: str, **fields) -> dict:
    """meta.json per data/FORMAT.md; written last (see start_output)."""
    meta = {"format_version": FORMAT_VERSION, **fields}
    tmp = os.path.join(out_dir, "meta.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "meta.json"))
    return meta


def write_gpt2_splits(out_dir, tok, name, layout, vocab_size, bos, eos, pad=None, width=0, verbose=True):
    """Write every split of a tokenised DatasetDict in `layout` and then meta.json. Returns the meta dict."""
    start_output(out_dir)
    splits = {}
    for split, ds in tok.items():
        path = os.path.join(out_dir, f"{split}.bin")
        if layout == "rows":
            n, lens = write_rows(path, ds, width, bos, eos, pad, vocab_size)
            splits[split] = {"rows": len(ds), "tokens": n}
        else:
            n, lens = write_stream(path, ds, eos, vocab_size)
            splits[split] = {"tokens": n}
        if verbose:
            print(f"{split}: {len(ds):,} texts -> {n:,} tokens in {path}\n  {length_report(lens, width)}")
    fields = dict(name=name, layout=layout, vocab_size=vocab_size, dtype=dtype_for(vocab_size),
                  pad=pad, bos=bos, eos=eos, mask=None, tokenizer="gpt2")
    if layout == "rows":
        fields["row_width"] = width
    return write_meta(out_dir, **fields, splits=splits)
