"""
MLM: a masked language model with iterative decoding, the XLM paper's MLM baseline.

Lineage: BERT (Devlin et al. 2019) masked-token training with a random masking rate, decoded step by step
as in Mask-Predict (Ghazvininejad et al. 2019); as used by XLM (Patel et al. 2025) on star graphs. What
changes from ARLM (arlm.py):
- the transformer is bidirectional (no causal mask);
- training: each example draws a masking rate t ~ U(min_mask_rate, 1), U(0, 1) by default, and masks each
  target position with probability t (the prompt is never masked; no 80/10/10 random/kept replacement, as in XLM); the loss is
  the CE of the masked tokens divided by the fixed number of target positions: the canvas's real tokens
  plus the first pad when there is room for one (XLM divides by the number of masked tokens; a count fixed
  by the data keeps gradient accumulation and DDP exact). It is not a likelihood bound: unlike MDLM the
  masked tokens are not weighted by 1/t, so MLM reports no NLL (nll_kind "none", no "nll" metric) and
  evaluation prints no perplexity for it;
- decoding starts from an all-mask target and unmasks the most confident positions (highest top
  probability) at each step, writing their argmax token (XLM's star setting: top_k 1, "top_prob"):
  either a fixed number per step (unmask='fixed': ceil(still masked / steps left), so it ends in exactly
  `steps` steps) or by XLM's cumulative-uncertainty rule (unmask='threshold': take positions in order of
  confidence while the summed uncertainty 1 - p of the ones taken before stays below `threshold`; the most
  confident is always taken, so at least one per step, whatever the threshold). Every step changes
  something, so there is no cache to exploit.

The canvas, as in mdlm.py but without its extra end position (MLM has no bound that needs the end in it):
each row is the prompt followed by `max_target_len` positions (the whole `block_size` window without
prompts) holding the target then pad; pads are targets (XLM: loss_on_padding), which is how the model
learns where the target ends. generate() returns the canvas up to the first pad.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    # set by the engine from the data's meta.json
    vocab_size: int = 0
    pad_id: Optional[int] = None
    bos_id: Optional[int] = None
    eos_id: Optional[int] = None
    mask_id: Optional[int] = None  # None: the data has no mask token; we take the id vocab_size
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0  # the canvas length; 0 = block_size (unconditional rows, stream windows)
    # network
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    # Two additions for small bidirectional models (off by default; the star configs turn them on). A lookup on
    # star graphs needs to know each edge node's partner, its neighbour in the prompt. A causal model gets a
    # "previous token" head for free from its mask; a small bidirectional RoPE model did not learn one in 20k
    # steps (0% on star_easy; bench/results/mdlm_mlm_star_easy_probes.json), and with these it learns the
    # lookups by 4k steps and solves star_easy.
    neighbour_mix: bool = False  # add linear maps of the left and right neighbours' embeddings to each position
    abs_pos: bool = False  # learned absolute positions added to the embeddings (GPT-2), besides RoPE: which
    #                        node of an edge a position holds is then visible, not only offsets between them
    # training: 1.0 masks the whole canvas of every row, a one-pass predictor decoded with steps=1 (the speedrun)
    min_mask_rate: float = 0.0  # each row's masking rate t ~ U(min_mask_rate, 1)
    # decoding
    unmask: str = "threshold"  # 'threshold' (XLM's star setting) or 'fixed' (a fixed number per step)
    threshold: float = 0.1  # 'threshold': the summed uncertainty allowed before the last one taken; <= 0: one a step
    steps: int = 0  # 'fixed': number of steps; 0 = one token per step
    temperature: float = 0.0  # 0 = the argmax token (XLM: top_k 1); > 0 samples it (float64)


# The allowed values of every Config field but the bools and the data's (the engine refuses anything else
# before the first step, in one line naming the key): (lo, hi) a number in [lo, hi], a tuple the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9), min_mask_rate=(0.0, 1.0),
              unmask=("threshold", "fixed"), threshold=(-1.0, 1000.0), steps=(0, 100_000), temperature=(0.0, 100.0))


# ----------------------------------------------------------------------------- the network
def rotary_tables(n_pos: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    # RoPE: pair i of a head is rotated by angle pos * base^(-2i/d), so q.k depends on the offset only
    inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
    angles = torch.outer(torch.arange(n_pos).float(), inv_freq)  # (n_pos, hd/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, T, 2, H, hd): q and k together; cos/sin (1, T, 1, 1, hd/2): rotate each (x1, x2) pair
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.n_head = c.n_head
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)
        self.proj = nn.Linear(c.n_embd, c.n_embd, bias=False)
        self.dropout = c.dropout

    def forward(self, x, cos, sin, attn_mask, slots, B, W, at=None):
        # x (N, C): the batch's real positions, packed; slots (N,): where each sits in the (B, W) batch, flattened
        # (None: the batch has no padding); at (M,): the positions (flat) whose outputs are wanted (None: all N)
        C = x.size(1)
        qkv = self.qkv(x)  # (N, 3C)
        if slots is not None:  # back in rows for attention (slots None: no padding, N = B*W already in rows)
            qkv = qkv.new_zeros(B * W, 3 * C).index_copy(0, slots, qkv)  # (B*W, 3C)
        qkv = qkv.view(B, W, 3, self.n_head, C // self.n_head)  # (B, W, 3, H, hd)
        # q and k rotated in one go, before the transpose to heads (faster than rotating the transposed views)
        q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # 2 x (B, H, W, hd)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, W, hd)
        # bidirectional: no causal mask; attn_mask (B, 1, 1, W) hides the positions after a row's canvas
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, W, hd)
        y = y.transpose(1, 2).reshape(B * W, C)
        at = slots if at is None else at
        return self.proj(y if at is None else y.index_select(0, at))  # (N or M, C)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.n_embd, bias=False)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * c.n_embd, c.n_embd, bias=False), nn.Dropout(c.dropout))

    def forward(self, x, cos, sin, attn_mask, slots, B, W, out=None):
        # pre-norm residual blocks, x (N, C) -> (N, C); with out = (rows of x, their flat positions in (B*W)):
        # (M, C), the outputs at those positions only (every position is still a key)
        rows, at = out if out is not None else (None, None)
        x = (x if rows is None else x[rows]) + self.attn(self.norm1(x), cos, sin, attn_mask, slots, B, W, at)
        return x + self.mlp(self.norm2(x))


class Model(nn.Module):
    nll_kind = "none"  # the loss bounds no likelihood: no "nll" metric (models/README.md)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        # the data's mask token when it has one (star: <mask>), else a new id past its vocabulary
        self.mask_id = c.mask_id if c.mask_id is not None else c.vocab_size
        self.n_vocab = max(c.vocab_size, self.mask_id + 1)
        self.canvas_len = c.max_target_len if c.max_target_len > 0 else c.block_size
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.wpe = nn.Embedding(2 * c.block_size + 2, c.n_embd) if c.abs_pos else None  # any prompt + canvas sample.py allows
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying (GPT-2)
        cos, sin = rotary_tables(c.block_size + self.canvas_len + 1, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("is_mask", torch.arange(self.n_vocab) == self.mask_id, persistent=False)  # (V,)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 n_layer)
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))
        self.forward_calls = 0  # network runs in the last generate()

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def trunk(self, idx, keep=None, cidx=None):
        """idx (B, W) ids, keep (B, W) False after a row's canvas (or None), cidx (B, L) canvas columns (or None)
        -> hidden states at the canvas (B, L, C); without cidx at every position (B, W, C), zero after a row's
        canvas. Two savings, the same numbers: unpadded, all but attention runs on the real positions only,
        packed as (N, C), so padding costs no matmul (prompts differ in length: 21% of a star_medium batch is
        padding); and the last block runs its attention output and MLP at the canvas only (the prompt's outputs
        are never read, and on star graphs the prompt is most of a row)."""
        B, W = idx.shape
        if W > self.cos.size(0):  # a longer canvas than training saw: extend the rotary tables
            self.cos, self.sin = (a.to(idx.device) for a in rotary_tables(W, self.config.n_embd // self.config.n_head))
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2)
        attn_mask = keep[:, None, None, :] if keep is not None else None  # (B, 1, 1, W)
        x = self.wte(idx)  # (B, W, C)
        if self.mix_left is not None:  # x_i += A e_(i-1) + B e_(i+1), zeros past the row's own ends: a row's
            e = x if keep is None else x * keep[..., None]  # last position sees 0 however wide its batch is
            x = x + self.mix_left(F.pad(e[:, :-1], (0, 0, 1, 0))) + self.mix_right(F.pad(e[:, 1:], (0, 0, 0, 1)))
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(W, device=idx.device))[None]
        x = self.drop(x)
        # padding positions (computed, never read) round N up to a multiple of 64: a run then sees a handful
        # of sizes, not a new one each step, which would fragment the CPU heap (as in models/ilm.py)
        slots, n = None, B * W
        if keep is not None:  # (N,) flat index of each real position, then the padding ones
            real = keep.reshape(-1)
            n = int(real.sum())
            pad = (~real).nonzero().squeeze(1)[:min(-n % 64, B * W - n)]
            slots = torch.cat([real.nonzero().squeeze(1), pad])
        x = x.reshape(B * W, -1) if slots is None else x.reshape(B * W, -1).index_select(0, slots)  # (N, C)
        out = None  # the last block's: (rows of the packed x, their flat positions in (B*W)), the canvas cells
        if cidx is not None:
            at = (torch.arange(B, device=idx.device)[:, None] * W + cidx).reshape(-1)  # (B*L,)
            out = (at if slots is None else keep.reshape(-1).cumsum(0)[at] - 1, at)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, attn_mask, slots, B, W, out if i == len(self.blocks) - 1 else None)
        x = self.norm(x)
        if cidx is not None:
            return x.view(B, cidx.size(1), -1)  # (B, L, C)
        if slots is None:  # no padding
            return x.view(B, W, -1)
        return x.new_zeros(B * W, x.size(1)).index_copy(0, slots[:n], x[:n]).view(B, W, -1)  # (B, W, C), 0 at padding

    def canvas_logits(self, xt, cidx, keep=None) -> torch.Tensor:
        """xt (B, W), cidx (B, L) canvas columns -> logits (B, L, V) in float32; the mask token is never a
        prediction (-inf). The head runs on the canvas only."""
        h = self.trunk(xt, keep, cidx)  # (B, L, C)
        return self.head(h).float().masked_fill(self.is_mask, float("-inf"))

    def layout(self, prompt_lens: torch.Tensor, L: int, device) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
        """Row i = prompt (prompt_lens[i]) + canvas (L). -> cidx (B, L) canvas columns, keep (B, W) (None when
        every row fills the width W), W."""
        W = (int(prompt_lens.max()) if len(prompt_lens) else 0) + L
        cidx = prompt_lens[:, None] + torch.arange(L, device=device)[None, :]  # (B, L)
        keep = torch.arange(W, device=device)[None, :] < (prompt_lens + L)[:, None]  # (B, W)
        return cidx, (None if bool(keep.all()) else keep), W

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None) -> dict:
        """Clean rows (B, T) -> masked rows. Each row draws a rate t ~ U(min_mask_rate, 1); each canvas position is
        masked with probability t; the prompt stays clean. A row shorter than prompt + canvas is padded."""
        c, dev = self.config, tokens.device
        B, T = tokens.shape
        prompt_lens = prompt_lens.long()
        cidx, keep, W = self.layout(prompt_lens, self.canvas_len, dev)
        fill = c.pad_id if c.pad_id is not None else 0  # stream data: W == T, nothing to fill
        x0 = F.pad(tokens, (0, max(0, W - T)), value=fill)[:, :W]  # (B, W)
        target = x0.gather(1, cidx)  # (B, L) the canvas: target then pad
        u = torch.rand(B, device=dev, generator=generator)
        t = c.min_mask_rate + (1 - c.min_mask_rate) * u  # (B,) masking rate per example, U(min_mask_rate, 1)
        masked = torch.rand(target.shape, device=dev, generator=generator) < t[:, None]  # (B, L)
        xt = x0.scatter(1, cidx, torch.where(masked, self.mask_id, target))
        return {"xt": xt, "cidx": cidx, "keep": keep, "target": target, "t": t}

    def count(self, target: torch.Tensor) -> torch.Tensor:
        """target (B, L) canvas -> the number of target positions: real tokens, plus the first pad that ends
        the target when the canvas has room for one (ARLM's eos); every position for data without pad."""
        if self.config.pad_id is None:
            return torch.tensor(target.numel(), device=target.device)
        real = (target != self.config.pad_id).sum(1)  # (B,)
        return (real + (real < target.size(1)).long()).sum()

    def forward(self, batch: dict):
        xt, cidx, target = batch["xt"], batch["cidx"], batch["target"]
        logits = self.canvas_logits(xt, cidx, batch["keep"])  # (B, L, V)
        B, L, V = logits.shape
        masked = xt.gather(1, cidx) == self.mask_id  # (B, L)
        # CE on the masked positions only (visible ones are given, not predicted)
        nll = F.cross_entropy(logits.view(-1, V), torch.where(masked, target, -1).view(-1), ignore_index=-1,
                              reduction="sum")
        n_tokens = self.count(target)  # fixed by the data, not by the masking
        n_masked = masked.sum()
        return nll / n_tokens, {"n_tokens": n_tokens.detach().float(),
                                "mask_frac": (n_masked / masked.numel()).detach().float(),
                                "masked_ce": (nll / n_masked.clamp(min=1)).detach()}  # CE per masked token

    # ------------------------------------------------------------------------- decoding
    def finish(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, L) filled canvas -> the target: cut at the first pad, drop an eos right before it; -1 after."""
        c = self.config
        B, L = canvas.shape
        end = torch.full((B,), L, dtype=torch.long, device=canvas.device)
        if c.pad_id is not None:
            is_pad = canvas == c.pad_id
            end = torch.where(is_pad.any(1), is_pad.int().argmax(1), end)
            if c.eos_id is not None:
                last = canvas.gather(1, (end - 1).clamp(min=0)[:, None]).squeeze(1)
                end = end - ((last == c.eos_id) & (end > 1)).long()
        return torch.where(torch.arange(L, device=canvas.device)[None, :] < end[:, None], canvas, -1)

    def choose(self, conf: torch.Tensor, masked: torch.Tensor, steps_left: int) -> torch.Tensor:
        """conf (B, L) top probability, masked (B, L) -> (B, L) the positions to unmask this step."""
        c = self.config
        B, L = conf.shape
        score = torch.where(masked, conf, -1.0)  # visible positions rank last
        order = score.argsort(dim=1, descending=True)  # (B, L) most confident first
        if c.unmask == "fixed":
            k = (masked.sum(1) + steps_left - 1) // steps_left  # ceil(still masked / steps left)
            rank = torch.empty_like(order).scatter_(1, order, torch.arange(L, device=conf.device).expand(B, L))
            return masked & (rank < k[:, None])
        # XLM's threshold rule: in order of confidence, take a position while the uncertainty (1 - p) of
        # those taken before it sums to less than the threshold; the most confident is always taken (also
        # when threshold <= 0, where the rule alone would take none and leave masks in the output)
        u = 1.0 - score.gather(1, order)  # (B, L) ascending uncertainty
        first = torch.arange(L, device=conf.device)[None, :] == 0  # (1, L)
        take = ((u.cumsum(1) - u) < c.threshold) | first  # exclusive cumulative sum
        return masked & torch.zeros_like(take).scatter_(1, order, take)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Confidence-ordered iterative unmasking (Mask-Predict without re-masking), vectorised over the batch.

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after the target.
        Start from an all-mask canvas; each step runs the network once, scores every masked position by its
        top probability, and writes the argmax (or a temperature draw) into the positions choose() picks,
        until none is masked. With history=True also returns the canvas after every step ((B, L) tensors;
        masked positions show the mask id, pad shows as -1)."""
        c, dev = self.config, prompt.device
        B, L = prompt.size(0), max_new_tokens
        prompt_lens = prompt_lens.long()
        cidx, keep, W = self.layout(prompt_lens, L, dev)
        col = torch.arange(W, device=dev)[None, :]
        P = min(prompt.size(1), W)
        x = torch.full((B, W), c.pad_id if c.pad_id is not None else self.mask_id, dtype=torch.long, device=dev)
        x[:, :P] = torch.where(col[:, :P] < prompt_lens[:, None], prompt[:, :P], x[:, :P])
        canvas = torch.full((B, L), self.mask_id, dtype=torch.long, device=dev)  # start: all mask
        n_steps = (c.steps if c.steps > 0 else L) if c.unmask == "fixed" else L  # 'threshold' takes >= 1 a step
        self.forward_calls = 0
        steps = []
        for i in range(n_steps):
            masked = canvas == self.mask_id  # (B, L)
            if not masked.any():
                break
            x.scatter_(1, cidx, canvas)
            logits = self.canvas_logits(x, cidx, keep)  # (B, L, V)
            self.forward_calls += 1
            probs = logits.softmax(-1)
            conf, best = probs.max(-1)  # (B, L) confidence = top probability, and its token
            pick = self.choose(conf, masked, n_steps - i)
            if c.temperature > 0 and pick.any():  # sample the token instead (float64, Gumbel-max)
                p = (logits[pick].double() / c.temperature).softmax(-1)
                e = -torch.rand(p.shape, dtype=torch.float64, device=dev, generator=generator).log()
                best = best.masked_scatter(pick, (p / e).argmax(-1))
            canvas = torch.where(pick, best, canvas)
            if history:
                steps.append(torch.where(canvas == c.pad_id, -1, canvas) if c.pad_id is not None else canvas.clone())
        out = self.finish(canvas)
        return (out, steps) if history else out
