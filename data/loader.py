"""
Reads prepared datasets (the format is in data/FORMAT.md): checks the files against meta.json, serves
batches of rows or stream windows from memmaps, and turns ids into text and back.

Every check here fails with a NanoError whose message names the file and the command that fixes it;
train.py, sample.py and eval.py print that one line instead of a traceback.
"""
import json
import os

import numpy as np
import torch

FORMAT_VERSION = 1
META_FIELDS = ("format_version", "layout", "vocab_size", "dtype", "splits")
FULL_SCAN_TOKENS = 50_000_000  # files up to this size get every id checked at open; larger ones per batch


class NanoError(Exception):
    """Bad input from the user (config, data, checkpoint, prompt): shown as one line, no traceback."""


def prepare_hint(data_dir: str) -> str:
    # data/star/easy -> data/star/prepare.py ; data/shakespeare -> data/shakespeare/prepare.py
    d = os.path.normpath(data_dir)
    for cand in (d, os.path.dirname(d)):
        if os.path.exists(os.path.join(cand, "prepare.py")):
            return f"run `python {os.path.join(cand, 'prepare.py')}`"
    return f"run the prepare.py that writes {d}"


def load_meta(data_dir: str) -> dict:
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        raise NanoError(f"{path} not found: the dataset is not prepared; {prepare_hint(data_dir)}")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise NanoError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#x} at offset {e.start}); "
                        f"{prepare_hint(data_dir)} again")
    except json.JSONDecodeError as e:
        raise NanoError(f"{path} is not valid JSON ({e}); {prepare_hint(data_dir)} again")
    except OSError as e:
        raise NanoError(f"{path} cannot be read ({e.strerror}); {prepare_hint(data_dir)} again")
    check_meta(meta, path, prepare_hint(data_dir))
    return meta


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_meta(meta, path: str, hint: str):
    """Every meta.json field the code reads, against data/FORMAT.md; the first problem is a NanoError."""
    def bad(what: str) -> NanoError:
        return NanoError(f"{path}: {what}; {hint} again")

    if not isinstance(meta, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(meta), "a number")
        raise bad(f"holds {kind}, not a JSON object of fields (format_version, layout, ...)")
    missing = [k for k in META_FIELDS if k not in meta]
    if meta.get("layout") == "rows" and "row_width" not in meta:
        missing.append("row_width")
    if "itos" not in meta and "tokenizer" not in meta:
        missing.append("itos or tokenizer")
    if missing:
        raise NanoError(f"{path} lacks {', '.join(missing)}; {hint} again")
    if meta["format_version"] != FORMAT_VERSION:
        raise bad(f"format_version is {meta['format_version']!r}, this code reads {FORMAT_VERSION}")
    if meta["layout"] not in ("rows", "stream"):
        raise bad(f"layout must be 'rows' or 'stream', not {meta['layout']!r}")
    dtype, V = meta["dtype"], meta["vocab_size"]
    if dtype not in ("uint16", "uint32"):
        raise bad(f"dtype must be 'uint16' or 'uint32', not {dtype!r}")
    if not _is_int(V) or V <= 0:
        raise bad(f"vocab_size must be a positive integer, not {V!r}")
    if V - 1 > np.iinfo(dtype).max:
        raise bad(f"vocab_size {V} does not fit dtype {dtype} (ids up to {np.iinfo(dtype).max}; needs uint32)")
    for k in ("pad", "bos", "eos", "mask"):
        if meta.get(k) is not None and not (_is_int(meta[k]) and 0 <= meta[k] < V):
            raise bad(f"{k} must be null or an id in [0, vocab_size={V}), not {meta[k]!r}")
    itos = meta.get("itos")
    if itos is not None and (not isinstance(itos, list) or len(itos) != V
                             or not all(isinstance(s, str) for s in itos)):
        have = f"{len(itos)} entries" if isinstance(itos, list) else f"a {type(itos).__name__}"
        raise bad(f"itos must be a list of vocab_size={V} strings, it has {have}")
    if "joiner" in meta and meta["joiner"] not in ("", " "):  # `in` on a tuple compares with ==: 0 is not ""
        raise bad(f'joiner must be "" (decode concatenates itos entries: characters) or " " (joins them with '
                  f'spaces, the default), not {meta["joiner"]!r}')
    if "itos" not in meta and meta["tokenizer"] != "gpt2":
        raise bad(f"tokenizer must be 'gpt2' (the only one data/gpt2.py knows), not {meta['tokenizer']!r}")
    if meta["layout"] == "rows":
        W = meta["row_width"]
        if not _is_int(W) or W <= 0:
            raise bad(f"row_width must be a positive integer, not {W!r}")
        lens = {k: meta[k] for k in ("max_prompt_len", "max_target_len") if k in meta}
        for k, v in lens.items():
            if not _is_int(v) or not 0 <= v <= W:
                raise bad(f"{k} must be an integer in [0, row_width={W}], not {v!r}")
        # (their sum may exceed row_width: the longest prompt and the longest target can be in different rows)
    splits = meta["splits"]
    if not isinstance(splits, dict) or not splits:
        raise bad(f'splits must be an object like {{"train": {{"rows": N, "tokens": N}}, ...}}, not {splits!r:.40}')
    for name, s in splits.items():
        if not isinstance(s, dict):
            raise bad(f'splits.{name} must be an object like {{"rows": N, "tokens": N}}, not {s!r:.40}')
        for k in ("rows", "tokens"):
            if k in s and not (_is_int(s[k]) and s[k] >= 0):
                raise bad(f"splits.{name}.{k} must be a count (an integer >= 0), not {s[k]!r}")


class Dataset:
    """One split of a prepared dataset. Items are rows (rows layout) or window starts (stream layout)."""

    def __init__(self, data_dir: str, split: str, block_size: int = 0):
        self.meta = meta = load_meta(data_dir)
        hint = prepare_hint(data_dir)
        self.path = os.path.join(data_dir, f"{split}.bin")
        self.dtype = np.dtype(meta["dtype"])
        self.vocab_size = meta["vocab_size"]
        self.pad = meta.get("pad")
        self.rows = meta["layout"] == "rows"
        if split not in meta["splits"]:
            raise NanoError(f"split {split!r}: {data_dir} has {', '.join(meta['splits'])} (its meta.json's splits)")
        if not os.path.exists(self.path):
            raise NanoError(f"{self.path} not found; {hint}")
        nbytes = os.path.getsize(self.path)
        if nbytes % self.dtype.itemsize:
            raise NanoError(f"{self.path}: {nbytes} bytes is not a whole number of {self.dtype} tokens "
                            f"(truncated, or meta.json's dtype is wrong); {hint} again")
        self.n_tokens = nbytes // self.dtype.itemsize
        expected = meta["splits"].get(split, {})
        if self.rows:
            self.width = meta["row_width"]
            if self.n_tokens % self.width:
                raise NanoError(f"{self.path}: {self.n_tokens} tokens is not a whole number of rows of width "
                                f"{self.width} (truncated?); {hint} again")
            self.n_items = self.n_tokens // self.width
            if expected.get("rows", self.n_items) != self.n_items:
                raise NanoError(f"{self.path} holds {self.n_items} rows but meta.json says {expected['rows']} "
                                f"(truncated, or wrong dtype); {hint} again")
            if self.n_items == 0:
                raise NanoError(f"{self.path} holds no rows: the {split} split is empty; {hint} again "
                                f"with a non-empty {split} split")
            self.prompt_lens = self._load_prompt_lens(os.path.join(data_dir, f"{split}_prompt_len.bin"), hint)
        else:
            if expected.get("tokens", self.n_tokens) != self.n_tokens:
                raise NanoError(f"{self.path} holds {self.n_tokens} tokens but meta.json's splits.{split}.tokens "
                                f"says {expected['tokens']} (truncated, or wrong dtype); {hint} again")
            if block_size <= 0:
                raise NanoError("stream data needs block_size > 0 (the window length)")
            self.width = block_size
            self.n_items = self.n_tokens - block_size  # every start that leaves a full window
            if self.n_items <= 0:
                raise NanoError(f"{self.path} has {self.n_tokens} tokens, too few for one window of "
                                f"block_size={block_size} (needs {block_size + 1}); lower block_size or {hint} "
                                f"with more {split} data")
            self.prompt_lens = None
        if self.n_tokens <= FULL_SCAN_TOKENS:
            arr = self._memmap()
            self._check_ids(arr)
            if self.rows:
                self._check_row_lens(arr.reshape(self.n_items, self.width), hint)

    def _load_prompt_lens(self, path: str, hint: str) -> np.ndarray:
        """{split}_prompt_len.bin: one uint16 per row, each <= max_prompt_len (or row_width)."""
        self.plen_path = path
        if not os.path.exists(path):
            if self.meta.get("max_prompt_len"):
                raise NanoError(f"{path} not found, but meta.json's max_prompt_len is {self.meta['max_prompt_len']} "
                                f"(the rows have prompts); {hint} again")
            return np.zeros(self.n_items, dtype=np.int64)
        nbytes = os.path.getsize(path)
        if nbytes != 2 * self.n_items:
            raise NanoError(f"{path} has {nbytes} bytes, expected {2 * self.n_items} (one uint16 per row of "
                            f"{self.path}); {hint} again")
        lens = np.fromfile(path, dtype=np.uint16).astype(np.int64)
        key = "max_prompt_len" if "max_prompt_len" in self.meta else "row_width"
        i = int(lens.argmax())
        if lens[i] > self.meta[key]:
            raise NanoError(f"{path}: row {i} has prompt length {lens[i]} but meta.json's {key} is "
                            f"{self.meta[key]}; {hint} again")
        return lens

    def _memmap(self) -> np.memmap:
        # re-opened per batch, as nanoGPT does: a long-lived memmap makes RSS grow with every page read
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if size != self.n_tokens * self.dtype.itemsize:  # prepare.py rewrites the data while a run reads it
            raise NanoError(f"{self.path} changed while this run reads it ({size} bytes, it had "
                            f"{self.n_tokens * self.dtype.itemsize}): was the data prepared again meanwhile? Once "
                            f"that is done, run again (a training with --resume)")
        return np.memmap(self.path, dtype=self.dtype, mode="r")

    def _check_ids(self, arr: np.ndarray):
        top = int(arr.max()) if arr.size else 0
        if top >= self.vocab_size:
            raise NanoError(f"{self.path} holds token id {top} but meta.json's vocab_size is {self.vocab_size}; "
                            f"the data and meta.json disagree: {prepare_hint(os.path.dirname(self.path))} again")

    def _check_row_lens(self, rows: np.ndarray, hint: str):
        """Each row's prompt fits in its real (non-pad) tokens and its target in max_target_len."""
        real = (rows != self.pad).sum(1) if self.pad is not None else np.full(len(rows), self.width)
        over = np.flatnonzero(self.prompt_lens > real)
        if over.size:
            i = over[0]
            raise NanoError(f"{self.plen_path}: row {i} has prompt length {self.prompt_lens[i]} but {self.path} "
                            f"row {i} holds only {real[i]} tokens before pad; {hint} again")
        if "max_target_len" in self.meta:
            over = np.flatnonzero(real - self.prompt_lens > self.meta["max_target_len"])
            if over.size:
                i = over[0]
                raise NanoError(f"{self.path}: row {i} has a target of {real[i] - self.prompt_lens[i]} tokens but "
                                f"meta.json's max_target_len is {self.meta['max_target_len']}; {hint} again")

    def draw(self, n: int, generator: torch.Generator) -> np.ndarray:
        """n item indices, uniform with replacement (a training batch)."""
        return torch.randint(self.n_items, (n,), generator=generator).numpy()

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Items idx -> tokens (B, T) int64 trimmed to the longest row (rows) or windows (B, block_size),
        and prompt_lens (B,)."""
        data = self._memmap()
        idx = np.asarray(idx, dtype=np.int64)
        if self.rows:
            batch = np.stack([data[i * self.width:(i + 1) * self.width] for i in idx]).astype(np.int64)
            if self.pad is not None:  # pad sits only at the end of a row: trim to the longest real row
                longest = int((batch != self.pad).sum(1).max())
                batch = batch[:, :max(longest, 1)]
            prompt_lens = self.prompt_lens[idx]
        else:
            batch = np.stack([data[i:i + self.width] for i in idx]).astype(np.int64)
            prompt_lens = np.zeros(len(idx), dtype=np.int64)
        if self.n_tokens > FULL_SCAN_TOKENS:
            self._check_ids(batch)
        return torch.from_numpy(batch), torch.from_numpy(prompt_lens)

    def split_prompt_target(self, tokens: torch.Tensor, prompt_lens: torch.Tensor):
        """Rows -> prompt (B, P) and target (B, L), each right-filled with -1 where it has no token."""
        B, T = tokens.shape
        pos = torch.arange(T)
        real = tokens != self.pad if self.pad is not None else torch.ones_like(tokens, dtype=torch.bool)
        is_prompt = pos < prompt_lens[:, None]
        P = int(prompt_lens.max()) if B else 0
        prompt = torch.where(is_prompt, tokens, -1)[:, :P]
        # shift each target left by its prompt length (vectorised gather)
        src = (pos[None, :] + prompt_lens[:, None]).clamp(max=T - 1)
        target = torch.where(real & ~is_prompt, tokens, -1).gather(1, src)
        target = torch.where(pos[None, :] + prompt_lens[:, None] < T, target, -1)
        L = int((target >= 0).sum(1).max()) if B else 0
        return prompt, target[:, :L]


class Mixture:
    """Training items drawn from several datasets of one vocabulary and layout, dataset i with probability
    weights[i] / sum(weights): a curriculum phase's train_data. An item is (dataset, index in it)."""

    def __init__(self, parts: list[Dataset], weights: list[float]):
        self.parts, self.pad = parts, parts[0].pad
        self.p = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.n_items = sum(d.n_items for d in parts)

    def draw(self, n: int, generator: torch.Generator) -> np.ndarray:
        which = torch.multinomial(self.p, n, replacement=True, generator=generator)  # (n,)
        u = torch.rand(n, generator=generator, dtype=torch.float64)  # uniform item within its dataset
        sizes = torch.tensor([d.n_items for d in self.parts], dtype=torch.float64)
        return torch.stack([which, (u * sizes[which]).long()], 1).numpy()  # (n, 2)

    def get(self, items: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2) items -> tokens (B, T) right-padded to the widest of them, prompt_lens (B,)."""
        rows = [np.flatnonzero(items[:, 0] == d) for d in range(len(self.parts))]  # each dataset's rows
        got = [self.parts[d].get(items[r, 1]) if len(r) else None for d, r in enumerate(rows)]
        T = max(g[0].shape[1] for g in got if g is not None)
        tokens = torch.full((len(items), T), self.pad if self.pad is not None else 0, dtype=torch.int64)
        prompt_lens = torch.zeros(len(items), dtype=torch.int64)
        for r, g in zip(rows, got):
            if g is not None:
                tokens[r, :g[0].shape[1]], prompt_lens[r] = g
        return tokens, prompt_lens


# ----------------------------------------------------------------------------- text <-> ids
def decode(ids, meta: dict) -> str:
    """ids (list or 1-D tensor) -> text; -1 (no token) is dropped, ids past the data's vocabulary (a model's
    own mask, say) show as '_'. Small vocabularies: itos entries joined with meta's joiner (" " unless the
    tokens are characters)."""
    ids = [int(i) for i in ids if int(i) >= 0]
    if "itos" in meta:
        itos = meta["itos"]
        return meta.get("joiner", " ").join(itos[i] if i < len(itos) else "_" for i in ids)
    from data.gpt2 import get_encoding
    enc = get_encoding()
    out, run = [], []
    for i in ids:
        if i < enc.n_vocab:
            run.append(i)
        else:
            out.append(enc.decode(run) + "_")
            run = []
    return "".join(out) + enc.decode(run)


def encode(text: str, meta: dict) -> list[int]:
    """text -> ids. Small vocabularies: whitespace-separated tokens that must all be in itos; with joiner ""
    every character of the text (whitespace included) is a token, so specials like <bos> cannot be typed."""
    if "itos" in meta:
        stoi = {s: i for i, s in enumerate(meta["itos"])}
        if meta.get("joiner", " ") == "":
            unknown = sorted({c for c in text if c not in stoi})
            if unknown:
                alphabet = "".join(s for s in meta["itos"] if len(s) == 1)
                raise NanoError(f"prompt characters {unknown[:5]} are not in the vocabulary of "
                                f"{meta.get('name', 'the data')} (it has: {alphabet!r})")
            return [stoi[c] for c in text]
        unknown = [t for t in text.split() if t not in stoi]
        if unknown:
            raise NanoError(f"prompt tokens {unknown[:5]} are not in the vocabulary of {meta.get('name', 'the data')} "
                            f"(it has: {' '.join(meta['itos'][:12])} ...)")
        return [stoi[t] for t in text.split()]
    from data.gpt2 import get_encoding
    return get_encoding().encode(text, allowed_special={"<|endoftext|>"})
