"""
BD3-LM: block diffusion, autoregressive over blocks of tokens and masked diffusion within each block.

Lineage: Arriola et al. 2025, "Block Diffusion: Interpolating Between Autoregressive and Diffusion Language
Models" (ICLR 2025; code github.com/kuleshov-group/bd3lms). It is MDLM (mdlm.py) applied block by block:
p(x) = prod_b p(block b | blocks < b), each factor a masked diffusion model. What changes from mdlm.py:
- the canvas (mdlm.py's: the target, then pad) is cut into blocks of `block_len` positions (the last may be
  shorter). Each block is noised on its own with MDLM's masking: its own time t, mask probability (1 - eps) t,
  SUBS (the mask logit is -inf, an unmasked position costs nothing), weight 1/t; block b is conditioned on
  the clean prompt and the clean blocks before it;
- one pass trains every block (the paper's vectorised training): the network reads [prompt | x_0 | x_t]
  under block_attention (the official block_diff_mask, ordered [x_t | x_0] there): a noised block sees itself
  (M_BD) and the clean blocks before it (M_OBC), a clean block the clean blocks up to itself (M_BC); the
  prompt is clean block -1. A clean token and its noised copy share a position (as the official code's
  rotary table). Only the x_t half is scored. The loss, the NELBO summed over blocks, is sum over blocks and
  rows of (1/t_b) CE of the masked tokens, over the fixed count of units (below): nll_kind = "bound";
- the sampler (the official "semi_ar") writes one block at a time: all-mask, then MDLM's ancestral sampler for
  `steps_per_block` steps given the prompt and the finished blocks (KV-cached: those are run once); it stops
  once every row has written its end (a pad) or the canvas is full. No time input (the official default), so
  MDLM's no-change cache is exact. The paper's clipped schedule t ~ U[beta, omega] is clip_beta / clip_omega.
Departures from the paper and the official code:
- t ~ U[t_min, 1] per block, stratified over batch x blocks, the strata dealt out at random (official: in row
  order), so every block's t is uniform; the mask probability is (1 - eps) t with mdlm.py's eps (official 0);
- time_sampling='count' draws the number of masks per block (mdlm.py: the same bound, less variance), and
  evaluation always does: the unbiased bound of the sampler's chain; U[t_min, 1] leaves out [0, t_min] (~0.1%);
- order='confidence' reveals as many masks a step as the random order, the surest by argmax (MaskGIT's order);
- neighbour_mix (mdlm.py's) mixes in the neighbours a position may see: never the next block's; a noised
  block's first position takes the clean token before the block.
The two ends. block_len = 0 (or >= the canvas) is one block, MDLM, with one difference: the prompt is run on
its own (block -1, so it can be cached) where MDLM's also attends to the canvas, which matters on star graphs
(bench/results/bd3lm_star_easy_probes.json); without a prompt the loss is mdlm.py's (tests/test_bd3lm.py).
block_len = 1 is autoregressive: with time_sampling='count' the loss is exactly the AR NLL of the canvas.

The NLL unit (models/README.md), as mdlm.py: each row is the prompt, then a canvas of `max_target_len + 1`
positions (`block_size + 1` without prompts, the `block_size` window for stream data), target then pad; the
first pad (or a data eos before it) is the end, scored like any token (later pads only loosen the bound). A
leading bos of an unconditional row is context (a one-token prompt, as the official ignore_bos), never written.
The divisor is target tokens + 1 per row (stream: every position). generate(max_new_tokens=L) fills L + 1
positions (L for stream data), stops a row at the block holding its first pad, returns at most L tokens.
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
    max_target_len: int = 0  # the canvas is this + 1 (room for the end); 0 = block_size (unconditional rows)
    # network
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    neighbour_mix: bool = False  # mdlm.py: add linear maps of the (visible) left and right neighbours' embeddings
    abs_pos: bool = False  # mdlm.py: learned absolute positions added to the embeddings, besides RoPE
    # block diffusion
    block_len: int = 4  # canvas positions per block; 0 = the whole canvas (MDLM); 1 = one token (autoregressive)
    schedule_eps: float = 1e-3  # mask probability at time t is (1 - eps) t
    t_min: float = 1e-3  # training times t ~ U[t_min, 1] per block: the 1/t weight stays finite
    antithetic: bool = True  # stratified times over the batch x blocks
    time_sampling: str = "continuous"  # 'continuous': t ~ U[t_min, 1]; 'count': k masks ~ U{1..n} per block, weight n/k
    clip_beta: float = 0.0  # the paper's clipped schedule: training times t ~ U[max(t_min, beta), omega]
    clip_omega: float = 1.0  # (continuous, training only: evaluation estimates the bound by count)
    # sampling
    steps_per_block: int = 16  # ancestral steps per block, from t = 1 to t = sample_eps
    sample_eps: float = 1e-5  # the last time of each block's sampler
    noise_removal: bool = True  # fill what is still masked at a block's end with the argmax (MDLM); else a draw
    order: str = "random"  # 'random': MDLM's ancestral reveals in each block; 'confidence': as many a step, the
    #                        most confident masks first, by their argmax (MaskGIT's order; not the paper's sampler)
    cache: bool = True  # run the network only on rows that changed (False: every row, every step)
    kv_cache: bool = True  # keep the keys/values of the prompt and finished blocks (False: recompute them each step)


# The allowed values of every Config field but the bools and the data's (the engine refuses anything else
# before the first step, in one line naming the key): (lo, hi) a number in [lo, hi], a tuple the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              block_len=(0, 65_536), schedule_eps=(0.0, 0.5), t_min=(1e-6, 0.5),
              time_sampling=("continuous", "count"), clip_beta=(0.0, 1.0), clip_omega=(0.0, 1.0),
              steps_per_block=(1, 100_000), sample_eps=(0.0, 0.5), order=("random", "confidence"))


# ----------------------------------------------------------------------------- the network
def rotary_tables(n_pos: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    # RoPE: pair i of a head is rotated by angle pos * base^(-2i/d), so q.k depends on the offset only
    inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
    angles = torch.outer(torch.arange(n_pos).float(), inv_freq)  # (n_pos, hd/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, T, 2, H, hd): q and k together; cos/sin (B, T, 1, 1, hd/2): rotate each (x1, x2) pair
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


def block_attention(blk: torch.Tensor, noised: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The block diffusion attention mask (Arriola et al. 2025, Sec. 3.2; bd3lms models/dit.py, block_diff_mask).
    blk (B, W) the block of each column (-1: the prompt), noised (W,) True for x_t columns, valid (B, W) False
    for the unused columns of a short prompt -> (B, 1, W, W), True where query column i may attend to key j."""
    qb, kb = blk[:, :, None], blk[:, None, :]  # (B, W, 1), (B, 1, W)
    qn, kn = noised[None, :, None], noised[None, None, :]  # (1, W, 1), (1, 1, W)
    diagonal = qn & kn & (qb == kb)  # M_BD: a noised block sees itself, bidirectionally
    offset_causal = qn & ~kn & (kb < qb)  # M_OBC: ... and the clean blocks before it (the prompt is block -1)
    block_causal = ~qn & ~kn & (kb <= qb)  # M_BC: a clean block sees the clean blocks up to and with itself
    m = (diagonal | offset_causal | block_causal) & valid[:, None, :]
    eye = torch.eye(blk.size(1), dtype=torch.bool, device=blk.device)  # an unused column sees itself: no NaN
    return (m | eye)[:, None]


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.n_head = c.n_head
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)
        self.proj = nn.Linear(c.n_embd, c.n_embd, bias=False)
        self.dropout = c.dropout

    def forward(self, x, cos, sin, attn_mask, cache=None):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head)  # (B, T, 3, H, hd)
        # q and k rotated in one go, before the transpose to heads (faster than rotating the transposed views)
        q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # 2 x (B, H, T, hd)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, hd)
        if cache is not None:  # sampling: these columns go at [start, start + T) of the cache, after what it holds
            start, rows = cache["start"], cache["rows"]  # rows: the batch rows of this call (None: all)
            if "k" not in cache:  # allocated on first use, in the dtype autocast gives the keys
                cache["k"] = k.new_zeros(cache["batch"], self.n_head, cache["size"], k.size(-1))
                cache["v"] = v.new_zeros(cache["batch"], self.n_head, cache["size"], v.size(-1))
            if rows is None:
                cache["k"][:, :, start:start + T], cache["v"][:, :, start:start + T] = k, v
                k, v = cache["k"][:, :, :start + T], cache["v"][:, :, :start + T]
            else:
                cache["k"][rows, :, start:start + T], cache["v"][rows, :, start:start + T] = k, v
                k, v = cache["k"][rows, :, :start + T], cache["v"][rows, :, :start + T]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.n_embd, bias=False)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * c.n_embd, c.n_embd, bias=False), nn.Dropout(c.dropout))

    def forward(self, x, cos, sin, attn_mask, cache=None):
        x = x + self.attn(self.norm1(x), cos, sin, attn_mask, cache)  # pre-norm residual blocks
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- a piece of the sampler
def draw(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """A draw from softmax(logits) (m, V) in float64 (as mdlm.py): argmax p / E, E ~ Exp(1) (Gumbel-max)."""
    p = logits.double().softmax(-1)  # (m, V)
    e = -torch.rand(p.shape, dtype=torch.float64, device=p.device, generator=generator).log()
    return (p / e).argmax(-1)


class Model(nn.Module):
    nll_kind = "bound"  # the loss is an upper bound on the NLL (models/README.md)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        assert 0 <= c.clip_beta < c.clip_omega <= 1, "clip_beta < clip_omega, both in [0, 1]"
        self.mask_id = c.mask_id if c.mask_id is not None else c.vocab_size
        self.n_vocab = max(c.vocab_size, self.mask_id + 1)
        self.rows_data = c.pad_id is not None  # rows end in pad; stream windows (no pad) have no end
        self.canvas_len = (c.max_target_len if c.max_target_len > 0 else c.block_size) + int(self.rows_data)
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        # room for any prompt + canvas that sample.py allows
        self.wpe = nn.Embedding(2 * c.block_size + 2, c.n_embd) if c.abs_pos else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying (GPT-2)
        cos, sin = rotary_tables(2 * c.block_size + 2, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        # never written: the mask (SUBS) and, in rows data, bos, which only opens a row (unless it is also eos)
        banned = torch.arange(self.n_vocab) == self.mask_id  # (V,)
        if self.rows_data and c.bos_id is not None and c.bos_id != c.eos_id:
            banned[c.bos_id] = True
        self.register_buffer("banned", banned, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 n_layer)
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))
        self.forward_calls = self.forward_rows = 0  # network runs (and rows) in the last generate()

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def block_of(self, L: int) -> int:
        """The block length for a canvas of L positions (block_len 0: one block)."""
        return min(self.config.block_len, L) if self.config.block_len > 0 else L

    # ------------------------------------------------------------------------- the layout of one pass
    @staticmethod
    def columns(prompt_lens: torch.Tensor, P: int, n_clean: int, k0: int, n: int, bl: int) -> dict:
        """The columns [prompt (P: row i uses prompt_lens[i]) | clean canvas 0..n_clean-1 | noised canvas
        k0..k0+n-1]: training is (P, L, 0, L), a sampler step (P, k0, k0, n), k0 a multiple of bl. -> pos,
        blk, valid, left, right (B, W) and noised (W,). left/right: the column of the neighbour token a
        column may see, -1 for none (neighbour_mix)."""
        dev, B, pl = prompt_lens.device, len(prompt_lens), prompt_lens[:, None]  # pl (B, 1)
        j = torch.arange(P, device=dev)[None]  # (1, P) prompt columns
        cc = torch.arange(n_clean, device=dev)[None]  # (1, n_clean) clean canvas positions
        i = torch.arange(n, device=dev)[None]  # (1, n) noised columns; their canvas positions are k0 + i
        kc = torch.cat([cc, k0 + i], 1)  # (1, n_clean + n) canvas position of every canvas column
        zero = torch.zeros(B, 1, dtype=torch.long, device=dev)
        pos = torch.cat([j + zero, pl + kc], 1)  # (B, W): prompt at 0.., the canvas right after each prompt
        blk = torch.cat([j * 0 - 1, kc // bl], 1) + zero  # (B, W) block -1: the prompt
        valid = torch.cat([j < pl, (kc >= 0) | (zero > 0)], 1)  # (B, W)
        noised = torch.arange(P + n_clean + n, device=dev) >= P + n_clean  # (W,)
        last_prompt = torch.where(pl > 0, pl - 1, -1)  # (B, 1) the column of a prompt's last token
        left = torch.cat([
            torch.where((j >= 1) & (j < pl), j - 1, -1),  # prompt: the token before, within the prompt
            torch.where(cc > 0, P + cc - 1, last_prompt),  # clean: the token before (the prompt's last at 0)
            torch.where((k0 + i) % bl != 0, P + n_clean + i - 1,  # noised: within the block, the noised one;
                        torch.where(k0 + i > 0, P + k0 + i - 1, last_prompt)) + zero], 1)  # at its start the clean one
        right = torch.cat([
            torch.where(j + 1 < pl, j + 1, -1),
            torch.where((cc + 1 < n_clean) & ((cc + 1) % bl != 0), P + cc + 1, -1) + zero,  # never the next block
            torch.where((i + 1 < n) & ((k0 + i + 1) % bl != 0), P + n_clean + i + 1, -1) + zero], 1)
        return dict(pos=pos, blk=blk, valid=valid, noised=noised, left=left, right=right)

    def run(self, idx, prompt_lens, P: int, n_clean: int, k0: int, bl: int, q0: int = 0, caches=None, rows=None):
        """One pass over idx (B, W) laid out as columns() says; only the columns from q0 on are computed (the
        ones before are in the caches) -> hidden (B, W - q0, C)."""
        lay = self.columns(prompt_lens, P, n_clean, k0, idx.size(1) - P - n_clean, bl)
        nb = lambda side: torch.where(side >= 0, idx.gather(1, side.clamp(min=0)), -1)  # noqa: E731 neighbour ids
        left, right = nb(lay["left"])[:, q0:], nb(lay["right"])[:, q0:]  # (B, Q)
        mask = block_attention(lay["blk"], lay["noised"], lay["valid"])[:, :, q0:]  # (B, 1, Q, W)
        pos = lay["pos"][:, q0:]  # (B, Q)
        if idx.size(1) > self.cos.size(0):  # positions past the table (longer rows than training): extend it
            hd = self.config.n_embd // self.config.n_head
            self.cos, self.sin = (a.to(idx.device) for a in rotary_tables(idx.size(1), hd))
        cos, sin = self.cos[pos][:, :, None, None], self.sin[pos][:, :, None, None]  # (B, Q, 1, 1, hd/2)
        x = self.wte(idx[:, q0:])  # (B, Q, C)
        if self.mix_left is not None:  # x_i += A e_left + B e_right, zeros where the neighbour is not visible
            emb = lambda ids: self.wte(ids.clamp(min=0)) * (ids >= 0)[..., None]  # noqa: E731
            x = x + self.mix_left(emb(left)) + self.mix_right(emb(right))
        if self.wpe is not None:
            x = x + self.wpe(pos)
        x = self.drop(x)
        for n, block in enumerate(self.blocks):
            if caches is not None:
                caches[n].update(start=q0, rows=rows)
            x = block(x, cos, sin, mask, caches[n] if caches is not None else None)
        return self.norm(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """hidden (B, n, C) -> logits (B, n, V) in float32, the mask (SUBS) and bos logits at -inf."""
        return self.head(h).float().masked_fill(self.banned, float("-inf"))

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None) -> dict:
        """Clean rows (B, T) -> idx (B, P + 2L) = [prompt | clean canvas | noised canvas]: each block of the
        canvas gets its own time t and is masked with probability (1 - eps) t; the prompt stays clean."""
        c, dev = self.config, tokens.device
        B, T = tokens.shape
        prompt_lens = prompt_lens.long() + self.lead_bos(tokens, prompt_lens).long()  # a leading bos: a prompt
        L, P = self.canvas_len, (int(prompt_lens.max()) if B else 0)
        bl = self.block_of(L)
        n_blocks = -(-L // bl)
        fill = c.pad_id if c.pad_id is not None else 0  # stream data: P = 0 and T = L, nothing to fill
        rows = F.pad(tokens, (0, max(0, P + L - T)), value=fill)  # (B, >= P + L)
        target = rows.gather(1, prompt_lens[:, None] + torch.arange(L, device=dev)[None])  # (B, L) target then pad
        col = torch.arange(P, device=dev)[None]
        prompt = torch.where(col < prompt_lens[:, None], rows[:, :P], fill)  # (B, P)
        blk = torch.arange(L, device=dev) // bl  # (L,) block of each canvas position
        u = torch.rand(B, n_blocks, device=dev, generator=generator)  # (B, nb) one time per block
        if c.antithetic:  # B x nb strata of [0, 1), dealt out at random so that every block's t is uniform
            N = B * n_blocks
            stratum = torch.rand(N, device=dev, generator=generator).argsort().view(B, n_blocks)
            u = (u + stratum) / N
        if c.time_sampling == "count" or not self.training:  # evaluation: always the exact bound (docstring)
            # per block, k ~ U{1..n} masks at uniformly random places, weight n/k: mdlm.py's count sampling on
            # each block's conditional ELBO, where n is the block's length (the last block may be shorter)
            n = (L - torch.arange(n_blocks, device=dev) * bl).clamp(max=bl)  # (nb,)
            k = (u * n).long().clamp(max=n - 1) + 1  # (B, nb)
            keys = torch.rand(B, n_blocks * bl, device=dev, generator=generator)
            keys[:, L:] = 2.0  # the positions past the canvas rank last in their block: never chosen
            rank = keys.view(B, n_blocks, bl).argsort(-1).argsort(-1)  # (B, nb, bl) a random order per block
            masked = (rank < k[..., None]).view(B, -1)[:, :L]  # (B, L)
            t = k.float() / n  # so the loss's 1/t is n/k
        else:
            lo, hi = max(c.t_min, c.clip_beta), c.clip_omega
            t = lo + (hi - lo) * u  # (B, nb)
            masked = torch.rand(B, L, device=dev, generator=generator) < (1 - c.schedule_eps) * t[:, blk]
        xt = torch.where(masked, self.mask_id, target)  # (B, L)
        return {"idx": torch.cat([prompt, target, xt], 1), "prompt_lens": prompt_lens, "target": target,
                "t": t[:, blk], "n_units": self.units(target, prompt_lens)}

    def lead_bos(self, tokens: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
        """(B,) True for unconditional rows (rows data) that start with bos: that bos is context, a prompt."""
        c = self.config
        if not self.rows_data or c.bos_id is None or tokens.size(1) == 0:
            return torch.zeros_like(prompt_lens, dtype=torch.bool)
        return (prompt_lens == 0) & (tokens[:, 0] == c.bos_id)

    def units(self, target: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
        """target (B, L) canvas (after the prompt or leading bos) -> the number of NLL units in the batch
        (models/README.md): per row the target tokens (less a trailing data eos, which is the end) + 1 for
        the end. Stream windows: every position."""
        c = self.config
        if not self.rows_data:
            return torch.tensor(target.numel(), device=target.device)
        n_real = (target != c.pad_id).sum(1)  # (B,) pad sits only at the end
        last = target.gather(1, (n_real - 1).clamp(min=0)[:, None]).squeeze(1)
        end_eos = (last == c.eos_id) & (n_real > 0)
        return (n_real - end_eos.long() + 1).sum()

    def forward(self, batch: dict):
        idx, target, t = batch["idx"], batch["target"], batch["t"]  # (B, P + 2L), (B, L), (B, L)
        L = target.size(1)
        P = idx.size(1) - 2 * L
        h = self.run(idx, batch["prompt_lens"], P, L, 0, self.block_of(L))  # (B, P + 2L, C) one pass, every block
        logits = self.logits(h[:, P + L:])  # (B, L, V) the head on the x_t half only
        B, _, V = logits.shape
        masked = idx[:, P + L:] == self.mask_id  # (B, L)
        # SUBS: an unmasked position copies its input (log p = 0): only masked positions are scored
        nll = F.cross_entropy(logits.view(-1, V), torch.where(masked, target, -1).view(-1), ignore_index=-1,
                              reduction="none").view(B, L)  # exactly 0 where unmasked
        # the NELBO summed over blocks: each block's masked CE weighted by its own 1/t, over the units of the rows
        n_units = batch["n_units"]  # fixed by the data, not by the noise
        loss = (nll / t).sum() / n_units.clamp(min=1)
        n_masked = masked.sum()
        n = n_units.detach().float()
        return loss, {"n_tokens": n, "nll": loss.detach(), "nll_tokens": n,  # the loss is the bound per unit
                      "mask_frac": (n_masked / masked.numel()).detach().float(),
                      "masked_ce": (nll.sum() / n_masked.clamp(min=1)).detach()}  # plain CE per masked token

    # ------------------------------------------------------------------------- sampling
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

    def start(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, L: int):
        """generate's [prompt | canvas] (B, P + L): each row's prompt (an unconditional row of rows data: bos,
        its context in training), the rest fill (pad; stream data: the mask) -> seq, prompt lengths (B,), fill."""
        c, dev, B = self.config, prompt.device, prompt.size(0)
        add_bos = (prompt_lens == 0) & (self.rows_data and c.bos_id is not None)  # (B,) start from bos, as trained
        if add_bos.any():
            prompt = torch.full((B, 1), c.bos_id, dtype=torch.long, device=dev) if prompt.size(1) == 0 else \
                torch.where(add_bos[:, None] & (torch.arange(prompt.size(1), device=dev) == 0), c.bos_id, prompt)
        pl = prompt_lens.long() + add_bos.long()
        P = int(pl.max()) if B else 0
        fill = c.pad_id if c.pad_id is not None else self.mask_id
        seq = torch.full((B, P + L), fill, dtype=torch.long, device=dev)
        Pp = min(P, prompt.size(1))
        seq[:, :Pp] = torch.where(torch.arange(Pp, device=dev)[None] < pl[:, None], prompt[:, :Pp], fill)
        return seq, pl, fill

    def run_rows(self, idx: torch.Tensor, prompt_lens: torch.Tensor, rows: torch.Tensor, *layout, **kw):
        """run() on the rows (B,) True of idx only (all of them: no copy, the caches written whole)."""
        r = None if bool(rows.all()) else rows.nonzero().squeeze(1)
        return self.run(idx if r is None else idx[r], prompt_lens if r is None else prompt_lens[r], *layout,
                        rows=r, **kw)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Block by block (the official semi_ar sampler, MDLM's ddpm_cache steps inside each block), vectorised
        over the batch. prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after the
        target. Each block starts all-mask; times t_i = 1 - i (1 - sample_eps) / steps_per_block; from t to s
        each mask is revealed with probability (t - s)/t by a float64 draw from p(x0 | prompt, blocks before,
        block) (order='confidence': as many, the surest, by argmax); the network runs again only on rows where
        something was revealed (cache); at the end what is still masked takes the argmax (noise_removal). The
        finished block, clean, goes into the KV cache (kv_cache=False recomputes the prompt and finished blocks
        every step: the same tokens). A row that wrote a pad has ended: its later blocks are pad, never run.
        history=True also returns the canvas after every step ((B, max_new_tokens): masks show the mask id, pad
        and unwritten positions -1)."""
        c, dev = self.config, prompt.device
        B, L = prompt.size(0), max_new_tokens + int(self.rows_data)  # the canvas, with room for the end
        seq, pl, fill = self.start(prompt, prompt_lens, L)  # (B, P + L) [prompt | canvas], filled block by block
        P, bl = seq.size(1) - L, self.block_of(L)
        caches = [{"size": P + L, "batch": B} for _ in range(c.n_layer)] if c.kv_cache else None
        done = torch.zeros(B, dtype=torch.bool, device=dev)  # rows whose end (a pad) is written
        self.forward_calls = self.forward_rows = 0
        steps = []
        if c.kv_cache and P > 0:  # the prompt, once: a clean block -1
            self.run(seq[:, :P], pl, P, 0, 0, bl, q0=0, caches=caches)
        ts = [1.0 - i * (1.0 - c.sample_eps) / c.steps_per_block for i in range(c.steps_per_block + 1)]
        for k0 in range(0, L, bl):
            n = min(bl, L - k0)
            block = torch.full((B, n), self.mask_id, dtype=torch.long, device=dev)
            block[done] = fill  # rows that have ended: pad, nothing to sample
            logits = torch.zeros(B, n, self.n_vocab, device=dev)  # (B, n, V) the last p(x0) of each row
            stale = torch.ones(B, dtype=torch.bool, device=dev)  # rows changed since their last network run

            def refresh(masked: torch.Tensor):  # p(x0) anew for the rows with masks left (cache: and changed)
                needed = masked.any(1) & (stale | (not c.cache))
                if needed.any():
                    idx = torch.cat([seq[:, :P + k0], block], 1)  # (B, P + k0 + n)
                    h = self.run_rows(idx, pl, needed, P, k0, k0, bl, q0=P + k0 if caches else 0, caches=caches)
                    logits[needed] = self.logits(h[:, -n:])
                    self.forward_calls += 1
                    self.forward_rows += int(needed.sum())

            def shown() -> torch.Tensor:  # history: the canvas so far, the current block as it stands
                view = torch.cat([seq[:, P:P + k0], block, seq[:, P + k0 + n:]], 1)
                return torch.where(view == fill, -1, view)[:, :max_new_tokens] if self.rows_data else view.clone()

            for i in range(c.steps_per_block):
                t, s = ts[i], ts[i + 1]
                masked = block == self.mask_id  # (B, n)
                if not masked.any():
                    break
                refresh(masked)
                u = torch.rand(B, n, dtype=torch.float64, device=dev, generator=generator)
                reveal = masked & (u < (t - s) / t)  # q(x_s | x_t, x0): unmask with probability (t - s)/t
                if c.order == "confidence":  # the same number per row, but the masks the model is surest of
                    conf = logits.softmax(-1).amax(-1).masked_fill(~masked, -1.0)  # (B, n) top probability
                    rank = conf.argsort(1, descending=True).argsort(1)  # (B, n) 0 = the most confident
                    reveal = masked & (rank < reveal.sum(1, keepdim=True))
                    block[reveal] = logits[reveal].argmax(-1)
                elif reveal.any():
                    block[reveal] = draw(logits[reveal], generator)
                stale = reveal.any(1)
                if history:
                    steps.append(shown())
            masked = block == self.mask_id
            if masked.any():  # t -> 0: what is still masked is revealed now
                refresh(masked)
                block[masked] = logits[masked].argmax(-1) if c.noise_removal else draw(logits[masked], generator)
                if history:
                    steps.append(shown())
            seq[:, P + k0:P + k0 + n] = block
            live = ~done  # the rows that wrote this block
            if self.rows_data:
                done = done | (block == c.pad_id).any(1)
            if bool(done.all()) or k0 + n >= L:
                break
            if caches is not None:  # the finished block, clean, into the cache (rows that go on)
                self.run_rows(seq[:, :P + k0 + n], pl, live & ~done, P, k0 + n, k0 + n, bl, q0=P + k0, caches=caches)
        out = self.finish(seq[:, P:])[:, :max_new_tokens]  # a canvas with no pad in it is cut at the length limit
        return (out, steps) if history else out
