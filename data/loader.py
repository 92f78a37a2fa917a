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
        with open(path) as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise NanoError(f"{path} is not valid JSON ({e}); {prepare_hint(data_dir)} again")
    missing = [k for k in META_FIELDS if k not in meta]
    if meta.get("layout") == "rows" and "row_width" not in meta:
        missing.append("row_width")
    if "itos" not in meta and "tokenizer" not in meta:
        missing.append("itos or tokenizer")
    if missing:
        raise NanoError(f"{path} lacks {', '.join(missing)}; {prepare_hint(data_dir)} again")
    if meta["format_version"] != FORMAT_VERSION:
        raise NanoError(f"{path} has format_version {meta['format_version']}, this code reads {FORMAT_VERSION}; "
                        f"{prepare_hint(data_dir)} again")
    if meta["layout"] not in ("rows", "stream"):
        raise NanoError(f"{path}: layout must be 'rows' or 'stream', not {meta['layout']!r}")
    return meta


class Dataset:
    """One split of a prepared dataset. Items are rows (rows layout) or window starts (stream layout)."""

    def __init__(self, data_dir: str, split: str, block_size: int = 0):
        self.meta = meta = load_meta(data_dir)
        self.path = os.path.join(data_dir, f"{split}.bin")
        self.dtype = np.dtype(meta["dtype"])
        self.vocab_size = meta["vocab_size"]
        self.pad = meta.get("pad")
        self.rows = meta["layout"] == "rows"
        if not os.path.exists(self.path):
            raise NanoError(f"{self.path} not found; {prepare_hint(data_dir)}")
        nbytes = os.path.getsize(self.path)
        if nbytes % self.dtype.itemsize:
            raise NanoError(f"{self.path}: {nbytes} bytes is not a whole number of {self.dtype} tokens "
                            f"(truncated, or meta.json's dtype is wrong); {prepare_hint(data_dir)} again")
        self.n_tokens = nbytes // self.dtype.itemsize
        if self.rows:
            self.width = meta["row_width"]
            if self.n_tokens % self.width:
                raise NanoError(f"{self.path}: {self.n_tokens} tokens is not a whole number of rows of width "
                                f"{self.width} (truncated?); {prepare_hint(data_dir)} again")
            self.n_items = self.n_tokens // self.width
            rows_expected = meta["splits"].get(split, {}).get("rows")
            if rows_expected is not None and rows_expected != self.n_items:
                raise NanoError(f"{self.path} holds {self.n_items} rows but meta.json says {rows_expected} "
                                f"(truncated, or wrong dtype); {prepare_hint(data_dir)} again")
            plen_path = os.path.join(data_dir, f"{split}_prompt_len.bin")
            if os.path.exists(plen_path):
                self.prompt_lens = np.fromfile(plen_path, dtype=np.uint16).astype(np.int64)
                if len(self.prompt_lens) != self.n_items:
                    raise NanoError(f"{plen_path} has {len(self.prompt_lens)} entries for {self.n_items} rows; "
                                    f"{prepare_hint(data_dir)} again")
            else:
                self.prompt_lens = np.zeros(self.n_items, dtype=np.int64)
        else:
            if block_size <= 0:
                raise NanoError("stream data needs block_size > 0 (the window length)")
            self.width = block_size
            self.n_items = self.n_tokens - block_size  # every start that leaves a full window
            if self.n_items <= 0:
                raise NanoError(f"{self.path} has {self.n_tokens} tokens, fewer than block_size={block_size}")
            self.prompt_lens = None
        if self.n_tokens <= FULL_SCAN_TOKENS:
            self._check_ids(self._memmap())

    def _memmap(self) -> np.memmap:
        # re-opened per batch, as nanoGPT does: a long-lived memmap makes RSS grow with every page read
        return np.memmap(self.path, dtype=self.dtype, mode="r")

    def _check_ids(self, arr: np.ndarray):
        top = int(arr.max()) if arr.size else 0
        if top >= self.vocab_size:
            raise NanoError(f"{self.path} holds token id {top} but meta.json's vocab_size is {self.vocab_size}; "
                            f"the data and meta.json disagree: {prepare_hint(os.path.dirname(self.path))} again")

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


# ----------------------------------------------------------------------------- text <-> ids
def decode(ids, meta: dict) -> str:
    """ids (list or 1-D tensor) -> text; -1 (no token) is dropped, ids past the data's vocabulary (a model's
    own mask, say) show as '_'."""
    ids = [int(i) for i in ids if int(i) >= 0]
    if "itos" in meta:
        itos = meta["itos"]
        return " ".join(itos[i] if i < len(itos) else "_" for i in ids)
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
    """text -> ids. Small vocabularies: whitespace-separated tokens that must all be in itos."""
    if "itos" in meta:
        stoi = {s: i for i, s in enumerate(meta["itos"])}
        unknown = [t for t in text.split() if t not in stoi]
        if unknown:
            raise NanoError(f"prompt tokens {unknown[:5]} are not in the vocabulary of {meta.get('name', 'the data')} "
                            f"(it has: {' '.join(meta['itos'][:12])} ...)")
        return [stoi[t] for t in text.split()]
    from data.gpt2 import get_encoding
    return get_encoding().encode(text, allowed_special={"<|endoftext|>"})
