"""
FlexMDM: masked diffusion that also inserts masks, so it chooses the length of what it writes.

Lineage: Kim et al. 2025, "Any-Order Flexible Length Masked Diffusion" (FlexMDM, arXiv 2509.01025; code
github.com/brianlck/FlexMDM): MDLM (mdlm.py) with a second clock. Each target token gets an insertion time
T1 ~ alpha and an unmasking time T2 ~ beta on [T1, 1]: at time t it is absent (t < T1), a mask (T1 <= t < T2)
or itself. The schedules are linear (alpha_t = beta_t = t, the paper's OpenWebText setup): T1 ~ U[0, 1],
T2 ~ U[T1, 1]. x_t is the prompt (never noised), the present tokens and masks in order, then an END slot. A
bidirectional transformer with adaLN on t gives token logits at each mask (SUBS: the mask logit is -inf) and,
for each gap of x_t (gap k just before canvas slot k, the last one read at END), g_hat: the tokens missing there.

Why the loss bounds the NLL. Generation is a continuous-time Markov chain: a gap inserts a mask at rate
alpha'/(1-alpha) g_hat, a mask becomes v at rate beta'/(1-beta) p(v | x_t). Given the target, the noising is
another chain from the prompt to the target (insertions at the hazard of T1, reveals at that of T2), so
-log p(target) <= KL(noising path || model path) (data processing), and the KL of two chains adds up to
    E_t [ sum_masks w CE(its token)  +  sum_gaps w (g_hat - g + g log(g / g_hat)) ],   w = 1/(1 - t),
the CE weighted beta'/(1-beta) and the Poisson Bregman divergence at the gap's true count g weighted
alpha'/(1-alpha) (both 1/(1-t) here). It bounds the NLL of the target tokens and their number, i.e. of the
target and its end, the engine's unit (models/README.md: a leading bos of an unconditional row is context, a
trailing data eos the end, each token of a stream window a unit): nll_kind = "bound". The nll reported (eval
mode) is tighter: x_t often does not say which target token a slot holds (two masks over 'abc'), so both terms
are averaged over every alignment of x_t to the target (alignment_marginals): the bound of the chain on x_t
itself, below the loss (still the paper's) by alignment_slack, which the network cannot change.

Departures from the paper, one line each:
- t = 1 - (1 - u)^2 (u antithetic), each row weighted 1/q(t), not t ~ U[0, 1 - eps]: the same bound, finite variance;
- g_hat = max_len (1 - t) softplus(.): the truth goes to 0 as t -> 1, so the 1/(1-t) integral stays finite;
- the gap after the last token is read at an END slot (the official code reads it at the first pad);
- neighbour_mix, abs_pos: mdlm.py's additions for small models (the star and maze configs turn them on);
- the sampler's last step inserts all that is still expected, then one call fills every mask by its argmax;
- length_head='distribution' (the official len_predict_type): p(count) per gap, trained by its CE beside the
  loss; the sampler and the reported nll read its mean;
- reveal_after > 0, with unmask='confidence' and insert='binomial' (the star rows): insert first, then reveal
  the surest masks as their argmax; not the chain the loss bounds (generate).
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
    pad_id: Optional[int] = None  # also the END slot's id
    bos_id: Optional[int] = None  # a leading bos of an unconditional row is context, never noised
    eos_id: Optional[int] = None  # inserted like any token; a trailing one is the end (dropped by generate)
    mask_id: Optional[int] = None  # None: the data has no mask token; we take the id vocab_size
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0  # the longest target; 0 = block_size (unconditional rows, stream windows)
    # network (as mdlm.py, time conditioning always on: how many tokens are still missing depends on t)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    neighbour_mix: bool = False  # add linear maps of the left and right neighbours' embeddings (mdlm.py says why)
    abs_pos: bool = False  # learned absolute positions added to the embeddings, besides RoPE (mdlm.py)
    length_head: str = "expectation"  # 'expectation': g_hat alone (the paper); 'distribution': also p(count) per gap
    # sampling
    steps: int = 32  # tau-leaping steps from t = 0 to 1, one network call each (+ one for the last fill)
    unmask: str = "sample"  # 'sample': reveals drawn from p(x | x_t) (paper); 'confidence': the surest, argmax
    insert: str = "poisson"  # 'poisson': Poisson counts per gap (paper); 'binomial': the row's total, then spread
    reveal_after: float = 0.0  # 0: insert and reveal together (paper); > 0: this share of the steps only inserts


# The allowed values of every Config field; the engine refuses anything else before the first step
# (one line naming the key). (lo, hi): a number in [lo, hi]; a tuple of strings: the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              length_head=("expectation", "distribution"), steps=(1, 100_000), unmask=("sample", "confidence"),
              insert=("poisson", "binomial"), reveal_after=(0.0, 0.95))


# ----------------------------------------------------------------------------- the alignment posterior
def alignment_marginals(y: torch.Tensor, slots: torch.Tensor, mask_id: int) -> torch.Tensor:
    """y (B, L) target ids (-1 past a row's end), slots (B, K) x_t's canvas (a token, mask_id, -1 past the row's)
    -> P (B, K, L + 2) float64, P[b, j, i] = P(slot j is target token i | x_t, y) (0 and L + 1 are the ends).
    Every token's (T1, T2) are i.i.d., so every alignment that fits (increasing; a clean slot on an equal token,
    a mask anywhere) is equally likely: forward-backward counts, normalised each step."""
    B, K = slots.shape
    L = y.size(1)
    ylen = (y >= 0).sum(1)  # (B,)
    n_slots = (slots >= 0).sum(1)  # (B,)
    yy = F.pad(y, (1, 1), value=-1)  # (B, L + 2)
    pos = torch.arange(L + 2, device=y.device)[None, :]
    inside = (pos >= 1) & (pos <= ylen[:, None])  # (B, L + 2) the real target positions
    fits = inside[:, None, :] & ((slots[:, :, None] == mask_id) | (slots[:, :, None] == yy[:, None, :]))  # (B, K, L+2)
    fits = fits.double()
    fwd, bwd = [], [None] * K
    f = (pos == 0).double().expand(B, -1)  # alignments of no slot end at the start
    for j in range(K):  # f_j(i) = fits_j(i) * sum_(i' < i) f_(j-1)(i')
        f = fits[:, j] * (f.cumsum(1) - f)
        f = f / f.sum(1, keepdim=True).clamp(min=1e-300)
        fwd.append(f)
    b = end = (pos == (ylen + 1)[:, None]).double()  # (B, L + 2) each row's END
    for j in reversed(range(K)):  # b_j(i) = fits_j(i) * sum_(i' > i) b_(j+1)(i'); past a row's slots: its END
        nb = fits[:, j] * (b.flip(1).cumsum(1).flip(1) - b)
        nb = nb / nb.sum(1, keepdim=True).clamp(min=1e-300)
        b = torch.where((j < n_slots)[:, None], nb, end)
        bwd[j] = b
    P = torch.stack(fwd, 1) * torch.stack(bwd, 1) if K else fits  # (B, K, L + 2)
    return P / P.sum(2, keepdim=True).clamp(min=1e-300)


# ----------------------------------------------------------------------------- the network (as mdlm.py)
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
        # x (N, C) the real slots packed; slots (N,) their flat index in (B, W) (None: no padding); at (M,) those read
        C = x.size(1)
        qkv = self.qkv(x)  # (N, 3C)
        if slots is not None:  # back in rows for attention (slots None: no padding, N = B*W already in rows)
            qkv = qkv.new_zeros(B * W, 3 * C).index_copy(0, slots, qkv)  # (B*W, 3C)
        qkv = qkv.view(B, W, 3, self.n_head, C // self.n_head)  # (B, W, 3, H, hd)
        q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # 2 x (B, H, W, hd)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, W, hd)
        # bidirectional: no causal mask; attn_mask (B, 1, 1, W) hides the positions after a row's END slot
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
        # adaLN-Zero (DiT): the time embedding sets a shift, scale and gate per sublayer; zero at init
        self.ada = nn.Linear(c.n_embd, 6 * c.n_embd)

    def forward(self, x, cos, sin, attn_mask, slots, B, W, cond, out=None):
        # x (N, C) -> (N, C); out = (rows of x, their flat slots): (M, C) at those only (all slots stay keys)
        rows, at = out if out is not None else (None, None)
        mod = self.ada(cond)  # (B, 6C): one modulation per row, then each slot takes its row's
        mod = mod.repeat_interleave(W, 0) if slots is None else mod.index_select(0, slots // W)  # (N, 6C)
        shift1, scale1, _, _, _, _ = mod.chunk(6, dim=-1)
        _, _, gate1, shift2, scale2, gate2 = (mod if rows is None else mod[rows]).chunk(6, dim=-1)
        a = self.attn(self.norm1(x) * (1 + scale1) + shift1, cos, sin, attn_mask, slots, B, W, at)  # (N or M, C)
        x = (x if rows is None else x[rows]) + gate1 * a
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, C): sinusoidal features of alpha_t = t, then an MLP (DiT's timestep embedder)."""

    def __init__(self, n_embd: int, n_freq: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(n_freq // 2) / (n_freq // 2)),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(n_freq, n_embd), nn.SiLU(), nn.Linear(n_embd, n_embd), nn.SiLU())

    def forward(self, t):
        angles = t.float()[:, None] * self.freqs[None]  # (B, n_freq/2)
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=-1))


def packed(sel: torch.Tensor) -> tuple[torch.Tensor, int]:
    """sel (N,) bool -> (the n indices where sel holds, then padding ones up to a multiple of 64), n. The padding
    rows are computed, never read: a run sees a handful of sizes, not a new one each step (no heap fragmentation)."""
    idx = sel.nonzero().squeeze(1)
    return torch.cat([idx, (~sel).nonzero().squeeze(1)[:-len(idx) % 64]]), len(idx)


# ----------------------------------------------------------------------------- pieces of the sampler
def draw(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """A draw from softmax(logits) (m, V) in float64 (as mdlm.py): argmax p / E, E ~ Exp(1) (Gumbel-max)."""
    e = -torch.rand(logits.shape, dtype=torch.float64, device=logits.device, generator=generator).log()
    return (logits.double().softmax(-1) / e).argmax(-1)


def binomial_counts(g_hat: torch.Tensor, rest: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """The row's new masks ~ Binomial(round(rest), p), each to a gap drawn in proportion to g_hat (B, G)."""
    now = torch.binomial(rest.round(), torch.full_like(rest, p), generator=generator).long()  # (B,)
    counts = torch.zeros_like(g_hat, dtype=torch.long)
    if int(now.max()) > 0:
        weights = g_hat.double() + 1e-12 * (g_hat.sum(1, keepdim=True) == 0)
        gap = torch.multinomial(weights, int(now.max()), replacement=True, generator=generator)  # (B, max now)
        counts.scatter_add_(1, gap, (torch.arange(gap.size(1), device=g_hat.device)[None] < now[:, None]).long())
    return counts


def spread(g: torch.Tensor, due: torch.Tensor) -> torch.Tensor:
    """due (B, 1) masks over the gaps in proportion to g (B, G): the cumulative shares rounded, so each gap gets the
    floor or ceiling of its share (rounding gap by gap would insert none of 3 x 0.4 expected)."""
    share = g * due / g.sum(1, keepdim=True).clamp(min=1e-12)  # (B, G), sums to due
    cum = share.cumsum(1).round().long()
    return torch.diff(cum, dim=1, prepend=torch.zeros_like(cum[:, :1]))


def insert_masks(seq: torch.Tensor, n: torch.Tensor, counts: torch.Tensor, mask_id: int):
    """seq (B, Lc), its first n (B,) slots real; counts (B, Lc + 1) new masks per gap -> the new seq and n."""
    B, Lc = seq.shape
    k = torch.arange(Lc, device=seq.device)[None, :]
    before = counts.cumsum(1)[:, :Lc]  # masks inserted at or before gap k: token k moves right by that
    out = torch.full((B, Lc + 1), mask_id, dtype=torch.long, device=seq.device)  # masks, then the old tokens
    out.scatter_(1, torch.where(k < n[:, None], (k + before).clamp(max=Lc), Lc), seq)
    return out[:, :Lc], n + counts.sum(1)


class Model(nn.Module):
    nll_kind = "bound"  # the loss is an upper bound on the NLL of the target and its end (docstring)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        self.rows_data = c.pad_id is not None  # rows end in pad; stream windows (no pad) have no end
        # the data's mask token (else a new id past its vocabulary); the END slot is the pad (else one more new id)
        self.mask_id = c.mask_id if c.mask_id is not None else c.vocab_size
        self.end_id = c.pad_id if c.pad_id is not None else max(c.vocab_size, self.mask_id + 1)
        self.n_vocab = max(c.vocab_size, self.mask_id + 1, self.end_id + 1)
        self.max_len = c.max_target_len if c.max_target_len > 0 else c.block_size  # the longest target
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.wpe = nn.Embedding(2 * c.block_size + 2, c.n_embd) if c.abs_pos else None  # any prompt + target + END
        self.time_emb = TimeEmbedding(c.n_embd)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.final_ada = nn.Linear(c.n_embd, 2 * c.n_embd)
        self.head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying (GPT-2)
        # g_hat, the expected number of missing tokens in the gap before each slot (official: ScalarLengthHead)
        self.len_head = nn.Sequential(nn.Linear(c.n_embd, c.n_embd), nn.GELU(), nn.Linear(c.n_embd, 1))
        # length_head='distribution': p(g | x_t, t) over g = 0..max_len per gap (official: len_predict_type)
        self.count_head = None if c.length_head != "distribution" else nn.Sequential(
            nn.Linear(c.n_embd, c.n_embd), nn.GELU(), nn.Linear(c.n_embd, self.max_len + 1))
        cos, sin = rotary_tables(c.block_size + self.max_len + 2, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        # never a target token: the mask (SUBS), pad, END; in rows data bos (context), unless also eos (GPT-2's)
        banned = torch.arange(self.n_vocab) == self.mask_id
        banned[self.end_id] = True
        if self.rows_data and c.bos_id is not None and c.bos_id != c.eos_id:
            banned[c.bos_id] = True
        self.register_buffer("banned", banned, persistent=False)  # (V,)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 n_layer)
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))
            if "ada" in name:  # adaLN-Zero: every block starts as the identity, the final norm unmodulated
                nn.init.zeros_(p)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def trunk(self, x: torch.Tensor, n_real: torch.Tensor, t: torch.Tensor, start=None, width=None) -> torch.Tensor:
        """x (B, W) ids, n_real (B,) slots per row up to its END slot, t (B,) times, start (B,) the first slot
        after the prompt (or None), width (B,) where the row's canvas ends (prefix + longest canvas + END; None:
        at its END) -> hidden (B, W, C), zero at padding (and before start). All but attention runs on the real
        slots only, packed (N, C); with start, the last block only where outputs are read."""
        B, W = x.shape
        if W > self.cos.size(0):  # a longer row than the tables hold: extend them
            self.cos, self.sin = (a.to(x.device) for a in rotary_tables(W, self.config.n_embd // self.config.n_head))
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2)
        keep = torch.arange(W, device=x.device)[None, :] < n_real[:, None]  # (B, W)
        attn_mask = None if bool(keep.all()) else keep[:, None, None, :]  # (B, 1, 1, W)
        cond = self.time_emb(t)  # (B, C)
        h = self.wte(x)  # (B, W, C)
        if self.mix_left is not None:  # x_i += A e_(i-1) + B e_(i+1), each row alone: its slots, END up to width, 0
            col = torch.arange(W + 1, device=x.device)[None, :]
            e = self.wte(torch.where(col < n_real[:, None], F.pad(x, (0, 1)), self.end_id))  # (B, W + 1, C)
            end = n_real if width is None else torch.maximum(n_real, width)  # (B,)
            e = e.masked_fill((col >= end[:, None])[:, :, None], 0.0)
            h = h + self.mix_left(F.pad(e[:, :W - 1], (0, 0, 1, 0))) + self.mix_right(e[:, 1:])
        if self.wpe is not None:
            h = h + self.wpe(torch.arange(W, device=x.device))[None]
        h = self.drop(h)
        slots, n = (None, B * W) if attn_mask is None else packed(keep.reshape(-1))  # (N,) real slots' flat index
        h = h.reshape(B * W, -1) if slots is None else h.reshape(B * W, -1).index_select(0, slots)  # (N, C)
        out = None  # the last block's: (rows of the packed h, their flat slots in (B*W)), the slots read
        if start is not None:
            read = (keep & (torch.arange(W, device=x.device)[None, :] >= start[:, None])).reshape(-1)  # (B*W,)
            rows, n = packed(read if slots is None else read[slots])  # (M,) the read rows of the packed h
            out = (rows, rows if slots is None else slots[rows])
        for i, block in enumerate(self.blocks):
            h = block(h, cos, sin, attn_mask, slots, B, W, cond, out if i == len(self.blocks) - 1 else None)
        at = slots if out is None else out[1]  # the slots h holds now (None: all, in order)
        mod = self.final_ada(cond)  # (B, 2C): each slot takes its row's
        mod = mod.repeat_interleave(W, 0) if at is None else mod.index_select(0, at // W)  # (N or M, 2C)
        shift, scale = mod.chunk(2, dim=-1)
        h = self.norm(h) * (1 + scale) + shift
        if at is None:  # no padding, every slot read
            return h.view(B, W, -1)
        # (B, W, C), zero elsewhere; the first n rows of h are the real ones (read, or all real slots)
        return h.new_zeros(B * W, h.size(1)).index_copy(0, at[:n], h[:n]).view(B, W, -1)

    def token_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., C) hidden states of masks -> logits (..., V) in float32; -inf for mask, pad, END (and bos)."""
        return self.head(h).float().masked_fill(self.banned, float("-inf"))

    def expected_gaps(self, h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """h (B, W, C), t (B,) -> g_hat (B, W) >= 0, the expected number of tokens missing just before each slot."""
        s = self.len_head(h).squeeze(-1).float()  # (B, W)
        return self.max_len * (1 - t.float())[:, None] * F.softplus(s)

    def gap_rates(self, h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """-> (B, W) the g_hat generate() inserts with: the expectation head's, or the mean of p(g | x_t, t)."""
        if self.count_head is None:
            return self.expected_gaps(h, t)
        p_count = self.count_head(h).float().softmax(-1)  # (B, W, max_len + 1)
        return (p_count * torch.arange(p_count.size(-1), device=h.device)).sum(-1)

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None, t=None) -> dict:
        """Clean rows (B, T) -> x_t, its mask targets and its gap counts, all in tensor ops on the device.

            row      p1 p2 | a b c d e pad             prompt, target (L = 5)
            times    a, c absent (t < T1); b, e masks (T1 <= t < T2); d itself (t >= T2)
            x        p1 p2 M d M END fill...           prompt, present tokens and masks in order, END slot
            target   -  -  b - e -                     the clean token at each mask (-1 elsewhere)
            gaps     -  -  1 1 0 0                     missing tokens just before each slot (gap after the
                                                       prompt at the first canvas slot, the last at END)
        n_units (B,): the row's target tokens (less a trailing data eos, which is the end) + 1; stream
        windows (no pad) have no end: L units. t (B,), optional: fixed times in [0, 1) instead of drawn ones."""
        c, dev = self.config, tokens.device
        B, T = tokens.shape
        prompt_lens = prompt_lens.long()
        j = torch.arange(T, device=dev)[None, :]  # (1, T) original positions
        real = tokens != c.pad_id if self.rows_data else torch.ones_like(tokens, dtype=torch.bool)
        lead_bos = ((prompt_lens == 0) & (tokens[:, 0] == c.bos_id) if c.bos_id is not None
                    else torch.zeros(B, dtype=torch.bool, device=dev))
        start = prompt_lens + lead_bos.long()  # (B,) the fixed prefix: prompt, or a leading bos
        is_target = (j >= start[:, None]) & real  # pad sits only at the end of a row
        L = is_target.sum(1)  # (B,) target lengths
        # times: u antithetic (stratified over the batch), t = 1 - (1-u)^2, and the row's weight w(t) / q(t) with
        # w = alpha'/(1-alpha) = beta'/(1-beta) = 1/(1-t), q(t) = 1 / (2 sqrt(1-t)): w / q = 2 / (1-u), finite moments
        u = (torch.rand(B, device=dev, generator=generator) / B + torch.arange(B, device=dev) / B) % 1
        if t is not None:  # the u that gives these times
            u = 1 - (1 - t.float().to(dev)).sqrt()
        t, weight = 1 - (1 - u) ** 2, 2 / (1 - u)
        # each token's hitting times: insertion T1 ~ alpha = U[0, 1], unmasking T2 ~ beta truncated to [T1, 1]
        T1 = torch.rand(B, T, device=dev, generator=generator)
        T2 = T1 + (1 - T1) * torch.rand(B, T, device=dev, generator=generator)
        absent = is_target & (t[:, None] < T1)  # (B, T)
        masked = is_target & (T1 <= t[:, None]) & (t[:, None] < T2)
        kept = is_target & ~absent  # present target tokens (masks or clean)
        present = (j < start[:, None]) | kept  # and the prefix
        n_real = start + kept.sum(1) + 1  # (B,) prefix + canvas + END
        W = int(n_real.max())
        col = present.cumsum(1) - 1  # (B, T) the column of each present token in x
        x = torch.full((B, W + 1), self.end_id, dtype=torch.long, device=dev)  # column W collects the absent
        x.scatter_(1, torch.where(present, col, W), torch.where(masked, self.mask_id, tokens))
        target = torch.full((B, W + 1), -1, dtype=torch.long, device=dev)
        target.scatter_(1, torch.where(masked, col, W), tokens)
        # an absent token is missing from the gap before the next present target token: column start + (present
        # target tokens before it); after the last one that is the END slot
        gap_col = start[:, None] + kept.cumsum(1)  # (B, T)
        gaps = torch.zeros(B, W + 1, device=dev).scatter_add_(1, torch.where(absent, gap_col, W), absent.float())
        if self.rows_data:  # + 1 for the end, unless a trailing data eos already is it
            last = tokens.gather(1, (start + L - 1).clamp(min=0, max=T - 1)[:, None]).squeeze(1)
            n_units = L + 1 - ((last == c.eos_id) & (L > 0)).long()  # (B,)
        else:
            n_units = L
        y = torch.where(j < L[:, None], tokens.gather(1, (start[:, None] + j).clamp(max=T - 1)), -1)  # (B, T)
        return {"x": x[:, :W], "target": target[:, :W], "gaps": gaps[:, :W],  # (B, W) each
                "start": start, "n_real": n_real, "t": t, "weight": weight, "n_units": n_units,  # (B,) each
                "y": y}  # the target in order, -1 after it: for the aligned bound (forward, evaluation)

    def forward(self, batch: dict):
        x, target, g, t = batch["x"], batch["target"], batch["gaps"], batch["t"]
        B, W = x.shape
        h = self.trunk(x, batch["n_real"], t, batch["start"], batch["start"] + self.max_len + 1)  # (B, W, C)
        # unmasking: the CE of the clean token at each mask (the head runs on the masks only)
        masked = target >= 0  # (B, W)
        ce = torch.zeros(B, W, device=x.device)
        logits = self.token_logits(h[masked])  # (M, V)
        ce[masked] = F.cross_entropy(logits, target[masked], reduction="none")
        # insertion: per gap (columns start .. END), D(g, g_hat) = g_hat - g + g log(g / g_hat), 0 log 0 = 0
        col = torch.arange(W, device=x.device)[None, :]
        is_gap = (col >= batch["start"][:, None]) & (col < batch["n_real"][:, None])  # (B, W)
        g_hat = self.expected_gaps(h, t)  # (B, W)
        bregman = g_hat - g + torch.xlogy(g, g) - g * torch.log(g_hat.clamp(min=1e-12))
        bregman = torch.where(is_gap, bregman, 0.0)
        # the ELBO: both rates are 1/(1-t) (linear schedules), times the row's 1/q(t); per unit of the rows
        n_units = batch["n_units"].sum()  # fixed by the data, not by the noise
        per, w = n_units.clamp(min=1), batch["weight"][:, None]  # (), (B, 1)
        unmask_loss, insert_loss = (w * ce).sum() / per, (w * bregman).sum() / per
        loss, n = unmask_loss + insert_loss, n_units.detach().float()
        metrics = {"n_tokens": n, "nll_tokens": n, "unmask_loss": unmask_loss.detach(),  # masked_ce: CE per mask
                   "insert_loss": insert_loss.detach(), "masked_ce": (ce.sum() / masked.sum().clamp(min=1)).detach()}
        if not self.training:  # the nll reported: the aligned bound (docstring) of the chain generate() runs
            metrics["nll"] = self.aligned_bound(batch, logits.detach(), self.gap_rates(h, t).detach(), is_gap) / per
        if self.count_head is not None:  # + the CE of each gap's true count under p(g | x_t, t), weighted as the
            # Bregman term: not a term of any bound, so the loss is no longer one (nll still is, of the sampler's chain)
            count_ce = F.cross_entropy(self.count_head(h[is_gap]).float(), g[is_gap].long().clamp(max=self.max_len),
                                       reduction="none")  # (gaps,)
            count_loss = (w.expand(B, W)[is_gap] * count_ce).sum() / per
            metrics["count_loss"] = count_loss.detach()
            return loss + count_loss, metrics
        if not self.training:  # the loss less the nll: what the hidden alignment costs, no network can change it
            metrics["alignment_slack"] = loss.detach() - metrics["nll"]
        return loss, metrics  # the loss is the bound

    @torch.no_grad()
    def aligned_bound(self, batch: dict, logits: torch.Tensor, g_hat: torch.Tensor, is_gap: torch.Tensor):
        """The aligned bound (docstring): per mask KL(pi, p), pi its token's posterior given x_t and the target, per
        gap the Bregman term at the posterior mean count, weighted as the loss. logits (M, V), g_hat (B, W) -> sum."""
        x, target, w, start = batch["x"], batch["target"], batch["weight"].double(), batch["start"]
        B, W = x.shape
        ylen = (batch["y"] >= 0).sum(1)  # (B,)
        y = batch["y"][:, :int(ylen.max())]  # (B, L)
        n_slots = batch["n_real"] - start - 1  # (B,) the canvas: x_t's slots after the prefix, before END
        K, L = int(n_slots.max()), y.size(1)
        k = torch.arange(K, device=x.device)[None, :]
        slots = torch.where(k < n_slots[:, None], x.gather(1, (start[:, None] + k).clamp(max=W - 1)), -1)  # (B, K)
        P = alignment_marginals(y, slots, self.mask_id)  # (B, K, L + 2)
        e_pos = (P * torch.arange(L + 2, device=x.device)).sum(2)  # (B, K) each slot's expected target position
        # gap before slot j misses E[pos_j] - E[pos_(j-1)] - 1 on average; the END gap ylen - E[pos_last]
        gbar = e_pos - F.pad(e_pos, (1, 0))[:, :K] - 1  # (B, K)
        last = e_pos.gather(1, (n_slots - 1).clamp(min=0)[:, None]).squeeze(1) if K else torch.zeros_like(w)
        end_gap = ylen - torch.where(n_slots > 0, last, 0.0)  # (B,)
        col = torch.arange(W, device=x.device)[None, :] - start[:, None]  # (B, W) the slot index of each column
        g = torch.where(col == n_slots[:, None], end_gap[:, None], gbar.gather(1, col.clamp(0, max(K - 1, 0)))
                        if K else 0.0).clamp(min=0)  # (B, W) at the gap columns
        gh = g_hat.double()
        bregman = torch.where(is_gap, gh - g + torch.xlogy(g, g) - g * torch.log(gh.clamp(min=1e-12)), 0.0)
        total = (w[:, None] * bregman).sum()
        masked = target >= 0  # (B, W)
        if masked.any():  # per mask: sum_i P(i) (log pi(y_i) - log p(y_i)), pi(v) = sum_(i: y_i = v) P(i)
            row, c = masked.nonzero(as_tuple=True)  # (M,)
            Pm = P[row, c - start[row], 1:L + 1]  # (M, L)
            same = (y[:, :, None] == y[:, None, :]) & (y[:, :, None] >= 0)  # (B, L, L)
            pi = torch.bmm(P[:, :, 1:L + 1].float(), same.float()).double()[row, c - start[row]]  # (M, L)
            logp = logits.float().log_softmax(-1).gather(1, y[row].clamp(min=0)).double()  # (M, L)
            kl = (Pm * (torch.log(pi.clamp(min=1e-300)) - logp)).where(Pm > 0, 0.0).sum(1)  # (M,)
            total = total + (w[row] * kl).sum()
        return total.float()

    # ------------------------------------------------------------------------- sampling
    def read(self, base: torch.Tensor, seq: torch.Tensor, n: torch.Tensor, start: torch.Tensor, t: float):
        """The network on x_t: base (B, W + 1) the prefix then END, seq (B, Lc) the canvas, its first n (B,) slots
        real -> hidden states at the canvas slots and END (B, Lc + 1, C), g_hat at gaps 0..n (B, Lc + 1), 0 after."""
        B, Lc = seq.shape
        W, k = base.size(1) - 1, torch.arange(Lc + 1, device=seq.device)[None, :]
        x = base.clone()  # the canvas at columns start.., its END right after (base is END past the prefix)
        x.scatter_(1, torch.where(k[:, :Lc] < n[:, None], start[:, None] + k[:, :Lc], W), seq)  # past n: column W
        tt = torch.full((B,), t, device=seq.device)
        h = self.trunk(x[:, :W], start + n + 1, tt, start, start + Lc + 1)  # (B, W, C)
        h = h.gather(1, (start[:, None] + k)[:, :, None].expand(-1, -1, h.size(-1)))  # (B, Lc + 1, C)
        return h, self.gap_rates(h, tt).masked_fill(k > n[:, None], 0.0)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Tau-leaping from the prompt alone (the paper's sampler; sampling.py in the official code).

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after each row's end (with
        history=True also the canvas after every step). Step i reads x_t at t = i / steps, then, to s = (i + 1) / steps:
        - each mask is revealed w.p. (beta_s - beta_t) / (1 - beta_t) = (s - t) / (1 - t), as a draw from p(x | x_t)
          (unmask='confidence': as many per row, the masks of highest top probability, as their argmax);
        - each gap gets Poisson(g_hat (alpha_s - alpha_t) / (1 - alpha_t)) new masks (insert='binomial': the row's
          total ~ Binomial(round(sum g_hat), that p), spread by g_hat); a row that would pass the limit waits;
        - the last step inserts round(sum g_hat), spread; one more call fills every mask left by its argmax.
        reveal_after > 0 (insert first): the first ceil(reveal_after steps) steps only insert, the rest only reveal
        (the last by argmax), each phase on its own clock 0 -> 1; with the distribution head the length is chosen
        once, at t = 0 (the mode of the one gap's count), and each insertion draws from what it still lacks."""
        c, dev, B, Lc = self.config, prompt.device, prompt.size(0), max_new_tokens
        prompt_lens = prompt_lens.long()
        add_bos = (prompt_lens == 0) & (c.bos_id is not None and self.rows_data)  # (B,) rows data: bos opens a row
        start = prompt_lens + add_bos.long()
        P = int(start.max()) if B else 0
        base = torch.full((B, P + Lc + 2), self.end_id, dtype=torch.long, device=dev)  # prefix, canvas, END, a bin
        Pp = min(prompt.size(1), P)
        in_prompt = torch.arange(Pp, device=dev)[None] < prompt_lens[:, None]  # (B, Pp)
        base[:, :Pp] = torch.where(in_prompt, prompt[:, :Pp], base[:, :Pp])
        if c.bos_id is not None:
            base[:, 0] = torch.where(add_bos, c.bos_id, base[:, 0])
        seq = torch.full((B, Lc), self.mask_id, dtype=torch.long, device=dev)  # the canvas: its first n are real
        n = torch.zeros(B, dtype=torch.long, device=dev)
        k, gaps = torch.arange(Lc, device=dev)[None, :], torch.arange(Lc + 1, device=dev)[None, :]
        total, steps = None, []  # total (B,): the length chosen at t = 0 (insert first, distribution head)
        n_ins = min(c.steps, math.ceil(c.reveal_after * c.steps)) if c.reveal_after > 0 else 0
        for i in range(c.steps):
            inserting, revealing = n_ins == 0 or i < n_ins, n_ins == 0 or i >= n_ins
            j, m = (i, n_ins or c.steps) if inserting else (i - n_ins, c.steps - n_ins)  # step j of m of this phase
            t, s, last = j / m, (j + 1) / m, j == m - 1
            h, g_hat = self.read(base, seq, n, start, t)
            if n_ins and total is None and self.count_head is not None:  # t = 0: one gap, its count the length
                total = self.count_head(h).float().softmax(-1)[:, 0].argmax(-1)
            h = h[:, :Lc]
            is_mask = (k < n[:, None]) & (seq == self.mask_id)  # (B, Lc)
            if revealing and not last and is_mask.any():
                flip = is_mask & (torch.rand(B, Lc, device=dev, generator=generator) < (s - t) / (1 - t))
                if c.unmask == "confidence":  # the same number per row, the masks of highest top probability, argmax
                    logits = self.token_logits(h)  # (B, Lc, V)
                    top = logits.softmax(-1).max(-1).values.masked_fill(~is_mask, -1.0)  # (B, Lc)
                    reveal = is_mask & (top.argsort(1, descending=True).argsort(1) < flip.sum(1, keepdim=True))
                    seq[reveal] = logits[reveal].argmax(-1)
                elif flip.any():
                    seq[flip] = draw(self.token_logits(h[flip]), generator)
            elif revealing and not inserting and is_mask.any():  # insert first's last step: the fill, by argmax
                seq[is_mask] = self.token_logits(h[is_mask]).argmax(-1)
            if inserting:
                # the tokens still expected in the row: sum g_hat, or what the chosen length still lacks
                rest = g_hat.double().sum(1) if total is None else (total - n).clamp(min=0).double()  # (B,)
                if last:  # t -> 1: all of it, rounded, within the limit (a chosen length is kept where g_hat ~ 0)
                    g = g_hat.double() if total is None else g_hat.double() + 1e-9 * (gaps <= n[:, None])
                    counts = spread(g, rest[:, None].round().minimum((Lc - n)[:, None].double()))
                else:
                    p = (s - t) / (1 - t)  # P(a missing token comes in [t, s]) = (alpha_s - alpha_t) / (1 - alpha_t)
                    counts = (torch.poisson(g_hat.double() * p, generator=generator).long() if c.insert == "poisson"
                              else binomial_counts(g_hat, rest, p, generator))
                    cap = Lc - n if total is None else torch.minimum(Lc - n, (total - n).clamp(min=0))  # (B,)
                    counts = counts * (counts.sum(1) <= cap).long()[:, None]  # a row past the limit waits
                seq, n = insert_masks(seq, n, counts, self.mask_id)
            if history:
                steps.append(torch.where(k < n[:, None], seq, -1))
        is_mask = (k < n[:, None]) & (seq == self.mask_id)
        if is_mask.any():  # the last fill: every mask left, by its argmax
            h, _ = self.read(base, seq, n, start, 1.0)
            seq[is_mask] = self.token_logits(h[:, :Lc][is_mask]).argmax(-1)
            if history:
                steps.append(torch.where(k < n[:, None], seq, -1))
        out = torch.where(k < n[:, None], seq, -1)
        if c.eos_id is not None and self.rows_data:  # a trailing data eos is the end, not a token
            out = out.masked_fill((k == (n - 1)[:, None]) & (out == c.eos_id), -1)
        return (out, steps) if history else out
