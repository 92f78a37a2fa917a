"""Random star-like token rows for the masked-model tests (tests/test_mdlm.py, tests/test_mlm.py)."""
import torch

STAR = dict(vocab_size=24, pad_id=0, bos_id=1, eos_id=2, mask_id=3)  # star data's ids (mask is reserved)


def star_rows(B: int, prompt_lens: list[int], target_lens: list[int], seed: int = 0):
    """Random star-like rows: prompt + target (node ids >= 4) + pad, trimmed to the longest row."""
    g = torch.Generator().manual_seed(seed)
    pl, tl = torch.tensor(prompt_lens), torch.tensor(target_lens)
    T = int((pl + tl).max())
    tokens = torch.randint(4, 24, (B, T), generator=g)
    tokens[torch.arange(T)[None, :] >= (pl + tl)[:, None]] = 0
    return tokens, pl
