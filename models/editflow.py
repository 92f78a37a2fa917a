"""
Edit Flows: a sequence is written by a continuous-time Markov chain whose jumps are edits (insert a token,
delete one, substitute one), so it chooses its length as it goes.

Lineage: Havasi, Karrer, Gat, Chen 2025, "Edit Flows: Flow Matching with Edit Operations" (arXiv 2506.09018).
The network reads x_t and t and gives, at every slot i, the rates lambda_ins,i (into the gap after i; a START
slot holds the first gap), lambda_del,i, lambda_sub,i, and token distributions Q_ins,i, Q_sub,i. Training: x0
and the target x1 are aligned with blanks (eps) into rows z0, z1 of equal length; at time t each column of z_t
is z1's with probability kappa(t) = t^3, else z0's (it jumps once, at hazard w = kappa'/(1 - kappa)), and x_t
is z_t without blanks. Each column with z_t != z1 is an edit still needed: eps -> a an insertion, a -> eps a
deletion, a -> b a substitution. What changes from flexmdm.py (same trunk, same adaLN): this noise instead of
two clocks per token; three rate heads and two token heads instead of a length head and one token head.

The loss bounds the NLL. Lift the model to z (an insertion of a into a gap goes to one of the k_c blank
columns there whose z1 is a): -log p(x1) <= KL(noising path || model path) (data processing), the KL of two
chains, which with every rate written lambda = w pi is, per row,
    bound = E_t  w(t) [ sum_i pi_i  +  sum_{pending c} ( -log pi_c - log Q_c + log k_c - 1 ) ] / q(t):
the survival of every rate the model gives, then w (-log pi Q) per edit still needed, and theta-free terms.
t = 1 - (1 - u)^2, q(t) = 1 / (2 sqrt(1 - t)): unbiased over all of [0, 1). x0 is fixed, so this bounds -log p(x1),
its tokens and their number: the target and its end, the engine's unit (models/README.md: a trailing data eos
is the end, a leading bos of an unconditional row context, each token of a stream window a unit): nll_kind = "bound".

x0 (config). 'masks': as many masks as the longest target; a mask never equals a token, so every alignment
of m masks with L tokens costs max(m, L) (Needleman-Wunsch, unit costs) and collate draws one uniformly, with
no dynamic programme. 'empty': the paper's insertion-only flow, for lengths that vary widely; evaluation then
reports a tighter bound (aligned_edits: the edit term averaged over the alignments of x_t to the target).

Departures from the paper, one line each:
- x0 = masks (MDLM's canvas) besides 'empty': training's deletions and substitutions then act on masks only.
- At a mask pi_del + pi_sub = 1 (a mask is always still to be edited, as MDLM's SUBS), the network gives the split;
  elsewhere pi = (1 - kappa) softplus(.), so rates vanish as t -> 1 and the survival integral stays finite.
- t from the sqrt law above with weight w/q (flexmdm.py's) instead of t ~ U[0, 1 - eps]: nothing cut.
- neighbour_mix and abs_pos: mdlm.py's two additions for small bidirectional models on star graphs.
- The sampler integrates each rate over a step (kappa_s - kappa_t), not Euler's kappa'(t) dt; its last step fires
  every mask and every edit still expected at least 1/2.
- mask_order='confidence' (the star rows): per step as many mask edits as the paper's draws, the surest first.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

BLANK = -1  # the alignment's eps (never a token id)
INS, DEL, SUB = 0, 1, 2  # the edit kinds, also the columns of the rate head


@dataclass
class Config:
    # set by the engine from the data's meta.json
    vocab_size: int = 0
    pad_id: Optional[int] = None  # unused slots (rows); never inserted
    bos_id: Optional[int] = None  # a leading bos of an unconditional row is context, never edited
    eos_id: Optional[int] = None  # inserted like any token; a trailing one is the end (dropped by generate)
    mask_id: Optional[int] = None  # x0's token; None: the data has none, we take the id vocab_size
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0  # the longest target; 0 = block_size (unconditional rows, stream windows)
    # network (as flexmdm.py: time conditioning always on)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    neighbour_mix: bool = False  # add linear maps of the left and right neighbours' embeddings (mdlm.py says why)
    abs_pos: bool = False  # learned absolute positions added to the embeddings, besides RoPE (mdlm.py)
    # the flow
    x0: str = "masks"  # 'masks': as many as the longest target (substitutions, deletions); 'empty': insertions
    # sampling
    steps: int = 32  # tau-leaping steps from t = 0 to 1 (one network call each)
    mask_order: str = "random"  # mask edits: 'random' per their rates (paper); 'confidence' the surest first


# The allowed values of every Config field; the engine refuses anything else before the first step
# (one line naming the key). (lo, hi): a number in [lo, hi]; a tuple of strings: the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9), x0=("masks", "empty"),
              steps=(1, 100_000), mask_order=("random", "confidence"))


# ----------------------------------------------------------------------------- the network (as flexmdm.py)
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
        # bidirectional: no causal mask; attn_mask (B, 1, 1, W) hides the unused slots after a row
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
    """t (B,) -> (B, C): sinusoidal features of t, then an MLP (DiT's timestep embedder, as flexmdm.py)."""

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


# ----------------------------------------------------------------------------- the alignment posterior (x0 empty)
def alignment_marginals(y: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """Which target position each token of x_t is, given x_t and the target (as flexmdm.py's): y (B, L) target
    ids (-1 past a row's end), slots (B, K) x_t's tokens in order (-1 past the row's) -> P (B, K,
    L + 2) float64, P[b, j, i] = P(slot j is target token i | x_t, y), positions 1..L (0 and L + 1: the ends).
    With x0 empty every column jumps at the same hazard, so every fitting alignment (increasing, each slot on
    an equal token) is equally likely: forward-backward counts, normalised each step."""
    B, K = slots.shape
    L = y.size(1)
    ylen = (y >= 0).sum(1)  # (B,)
    n_slots = (slots >= 0).sum(1)  # (B,)
    yy = F.pad(y, (1, 1), value=-1)  # (B, L + 2)
    pos = torch.arange(L + 2, device=y.device)[None, :]
    inside = (pos >= 1) & (pos <= ylen[:, None])  # (B, L + 2) the real target positions
    fits = (inside[:, None, :] & (slots[:, :, None] == yy[:, None, :])).double()  # (B, K, L + 2)
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


# ----------------------------------------------------------------------------- the scheduler kappa(t) = t^3
def kappa_of(t: torch.Tensor, omt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """t and omt = 1 - t (B,) each, apart so that 1 - kappa stays exact near t = 1 -> kappa, 1 - kappa, kappa'."""
    return t ** 3, omt * (1 + t + t * t), 3 * t * t


class Model(nn.Module):
    nll_kind = "bound"  # the loss is an upper bound on the NLL of the target and its end (docstring)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        self.rows_data = c.pad_id is not None  # rows end in pad; stream windows (no pad) have no end
        # ids: the data's mask (else a new one), START (its gap is the target's first), unused slots (pad, else START)
        self.mask_id = c.mask_id if c.mask_id is not None else c.vocab_size
        self.start_id = max(c.vocab_size, self.mask_id + 1)
        self.fill_id = c.pad_id if c.pad_id is not None else self.start_id
        self.n_vocab = self.start_id + 1
        self.max_len = c.max_target_len if c.max_target_len > 0 else c.block_size  # the longest target
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.wpe = nn.Embedding(2 * c.block_size + 2, c.n_embd) if c.abs_pos else None  # prompt + START + canvas
        self.time_emb = TimeEmbedding(c.n_embd)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.final_ada = nn.Linear(c.n_embd, 2 * c.n_embd)
        # the token a substitution writes (tied, as MDLM's head) and an insertion (untied: tied, it copies the slot)
        self.sub_head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.sub_head.weight = self.wte.weight
        self.ins_head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        # three logits per slot (insert after it, delete it, substitute it): rates() says what they become
        self.rate_head = nn.Sequential(nn.Linear(c.n_embd, c.n_embd), nn.GELU(), nn.Linear(c.n_embd, 3))
        cos, sin = rotary_tables(c.block_size + self.max_len + 2, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        # never written by an edit: the mask, START, pad; in rows data bos (context), unless also eos (GPT-2's)
        banned = torch.zeros(self.n_vocab, dtype=torch.bool)
        banned[[self.mask_id, self.start_id, self.fill_id]] = True
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

    def trunk(self, x: torch.Tensor, n_real: torch.Tensor, t: torch.Tensor, start=None) -> torch.Tensor:
        """x (B, W) ids, n_real (B,) real slots per row (prefix, START, x_t), t (B,) times, start (B,) the START
        slot (or None) -> hidden (B, W, C), zero at padding (and before start). As flexmdm.py's: all but attention
        runs on the real slots only, packed (N, C), and the last block only at the slots read (START on)."""
        B, W = x.shape
        if W > self.cos.size(0):  # a longer row than the tables hold: extend them
            self.cos, self.sin = (a.to(x.device) for a in rotary_tables(W, self.config.n_embd // self.config.n_head))
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2)
        keep = torch.arange(W, device=x.device)[None, :] < n_real[:, None]  # (B, W)
        attn_mask = None if bool(keep.all()) else keep[:, None, None, :]  # (B, 1, 1, W)
        cond = self.time_emb(t)  # (B, C)
        h = self.wte(x)  # (B, W, C)
        if self.mix_left is not None:  # x_i += A e_(i-1) + B e_(i+1), zeros past each row's own ends (not the
            e = h.masked_fill(~keep[..., None], 0.0)  # batch's): a row's outputs never depend on its companions
            h = h + self.mix_left(F.pad(e[:, :-1], (0, 0, 1, 0))) + self.mix_right(F.pad(e[:, 1:], (0, 0, 0, 1)))
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

    def rates(self, h: torch.Tensor, is_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (..., C), is_mask (...) -> rho (..., 3) >= 0 and share (..., 2). Rates of (insert after, delete,
        substitute): kappa'(t) rho, except delete / substitute at a mask: w(t) share (share sums to 1)."""
        s = self.rate_head(h).float()  # (..., 3)
        return F.softplus(s), s[..., 1:].softmax(-1) * is_mask[..., None]

    def pi(self, h: torch.Tensor, is_mask: torch.Tensor, one_minus_kappa: torch.Tensor) -> torch.Tensor:
        """-> pi (..., 3) = rate / w(t): (1 - kappa) rho, or the share at a mask. one_minus_kappa broadcasts."""
        rho, share = self.rates(h, is_mask)
        pi = one_minus_kappa[..., None] * rho
        return torch.cat([pi[..., :1], torch.where(is_mask[..., None], share, pi[..., 1:])], -1)

    def token_logits(self, h: torch.Tensor, kind: int) -> torch.Tensor:
        """h (..., C) -> logits (..., V) in float32 of the token an insertion (INS) or substitution (SUB) writes."""
        head = self.ins_head if kind == INS else self.sub_head
        return head(h).float().masked_fill(self.banned, float("-inf"))

    def times(self, B: int, dev, generator=None, t=None):
        """-> t = 1 - (1 - u)^2, kappa, 1 - kappa and the row weight w(t) / q(t), q = 1 / (2 (1 - u)) (each (B,));
        t (B,) optional: fixed times. Finite variance: near t = 1 a column is pending w.p. ~ (1 - t), weighs ~ w/q."""
        u = (torch.rand(B, device=dev, generator=generator) / B + torch.arange(B, device=dev) / B) % 1  # antithetic
        if t is not None:  # the u that gives these times
            u = 1 - (1 - t.float().to(dev)).sqrt()
        omt = (1 - u) ** 2
        t = 1 - omt
        kap, one_minus_kap, dkap = kappa_of(t, omt)
        return t, kap, one_minus_kap, dkap / one_minus_kap * (2 * (1 - u))  # the last: w(t) / q(t)

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None, t=None) -> dict:
        """Clean rows (B, T) -> x_t and the edits still needed to reach the target, in tensor ops on the device.

            row      p1 p2 | a b c pad                  prompt, target x1 (L = 3); x0 = 4 masks ('masks')
            z0       M  M  M  M                         aligned: one mask column left over (a random one)
            z1       a  eps b  c                        -> 3 substitutions, 1 deletion
            z_t      a  M  M  c                         each column z1's w.p. kappa(t), else z0's
            x        p1 p2 S a M M c fill...            prompt, START slot S, x_t = z_t without eps
            edits    del at M(1), sub M(2) -> b         kind, slot (the position, or for an insertion the
                                                        slot whose gap it fills: S for the first), token
        Per column of z (B, N): op_kind (INS/DEL/SUB, -1 when done), op_slot, op_tok (-1 for a deletion) and
        op_logk (log of the number of pending insertions of that token into that gap). n_units (B,): the row's
        target tokens (less a trailing data eos, which is the end) + 1; stream windows: L units."""
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
        # the alignment: N = max(M, L) columns; the longer side fills them all, the shorter one a uniformly random
        # subset in order (every such alignment has the Needleman-Wunsch unit cost max(M, L): masks match nothing)
        M = self.max_len if c.x0 == "masks" else 0  # x0's length
        N = L.clamp(min=M)  # (B,) columns per row
        Nw = max(int(N.max()), 1)
        col = torch.arange(Nw, device=dev)[None, :]  # (1, Nw)
        col_real = col < N[:, None]
        score = torch.rand(B, Nw, device=dev, generator=generator).masked_fill(~col_real, 2.0)
        rank = score.argsort(1).argsort(1)  # (B, Nw) a random order of each row's columns
        has0 = col_real & ((M >= L)[:, None] | (rank < M))  # columns holding a mask in z0
        has1 = col_real & ((L >= M)[:, None] | (rank < L[:, None]))  # columns holding a target token in z1
        tgt = tokens.gather(1, (start[:, None] + j).clamp(max=T - 1))  # (B, T) the target, left-aligned
        tgt = F.pad(tgt, (0, max(0, Nw - T)))[:, :Nw]
        z0 = torch.where(has0, self.mask_id, BLANK)  # (B, Nw)
        z1 = torch.where(has1, tgt.gather(1, (has1.long().cumsum(1) - 1).clamp(min=0)), BLANK)
        # z_t: each column z1's with probability kappa(t), else z0's
        t, kap, one_minus_kap, weight = self.times(B, dev, generator, t)
        zt = torch.where(torch.rand(B, Nw, device=dev, generator=generator) < kap[:, None], z1, z0)
        present = col_real & (zt != BLANK)  # (B, Nw) the columns x_t holds
        before = present.long().cumsum(1) - present.long()  # x_t positions before each column
        n_real = start + 1 + present.sum(1)  # (B,) prefix + START + x_t
        W = int(n_real.max())
        x = torch.full((B, W + 1), self.fill_id, dtype=torch.long, device=dev)  # column W collects the rest
        Tp = min(T, W)  # the prefix is shorter than W (START follows it)
        x[:, :Tp] = torch.where(j[:, :Tp] < start[:, None], tokens[:, :Tp], self.fill_id)  # the prefix, kept
        x.scatter_(1, start[:, None], self.start_id)
        x.scatter_(1, torch.where(present, start[:, None] + 1 + before, W), zt.clamp(min=0))
        pending = col_real & (zt != z1)  # the edits still needed: columns where z_t != z1
        kind = torch.where(pending, torch.where(zt == BLANK, INS, torch.where(z1 == BLANK, DEL, SUB)), -1)  # (B, Nw)
        # slot: an insertion fills the gap after START + before (x_t tokens before it); DEL, SUB act at the next
        slot = torch.where(pending, start[:, None] + before + (kind != INS).long(), -1)
        tok = torch.where(pending & (kind != DEL), z1, -1)
        # k: pending insertions of the same token into the same gap (they give one x; the lifted model splits)
        key = torch.where(kind == INS, (torch.arange(B, device=dev)[:, None] * (Nw + 1) + before) * self.n_vocab
                          + tok, -1 - col - Nw * torch.arange(B, device=dev)[:, None])  # unique when not INS
        _, inverse, counts = torch.unique(key.flatten(), return_inverse=True, return_counts=True)
        logk = torch.where(kind == INS, counts[inverse].view(B, Nw).float().log(), 0.0)
        # the units: the target tokens + 1 for the end, unless a trailing data eos already is it; a stream window's L
        last = tokens.gather(1, (start + L - 1).clamp(min=0, max=T - 1)[:, None]).squeeze(1)  # (B,)
        n_units = L + 1 - ((last == c.eos_id) & (L > 0)).long() if self.rows_data else L  # (B,)
        return {"x": x[:, :W], "start": start, "n_real": n_real,  # (B, W), (B,), (B,)
                "t": t, "one_minus_kappa": one_minus_kap, "weight": weight, "n_units": n_units,  # (B,) each
                "op_kind": kind, "op_slot": slot, "op_tok": tok, "op_logk": logk,  # (B, Nw) each
                "y": torch.where(col < L[:, None], tgt, -1)}  # (B, Nw) the target in order: the aligned bound's

    def forward(self, batch: dict):
        x, t = batch["x"], batch["t"]
        B, W = x.shape
        h = self.trunk(x, batch["n_real"], t, batch["start"])  # (B, W, C)
        pi = self.pi(h, x == self.mask_id, batch["one_minus_kappa"][:, None])  # (B, W, 3) rate / w(t)
        s = torch.arange(W, device=x.device)[None, :]
        start, n_real = batch["start"][:, None], batch["n_real"][:, None]
        gap_ok = (s >= start) & (s < n_real)  # START and every x_t position have a gap after them
        pos_ok = (s > start) & (s < n_real)  # the x_t positions: deletion, substitution (never the prompt)
        # the survival term: every rate the model gives, sum_i w pi_i (w outside)
        survival = (pi[..., INS] * gap_ok + (pi[..., DEL] + pi[..., SUB]) * pos_ok).sum(1)  # (B,)
        # each pending edit c: -log(lambda_c Q_c / w) + log k_c - 1 = -log pi_c - log Q_c + log k_c - 1
        pend = batch["op_kind"] >= 0  # (B, N)
        b = pend.nonzero(as_tuple=True)[0]  # (P,) the row of each pending edit
        kind, slot, tok = batch["op_kind"][pend], batch["op_slot"][pend], batch["op_tok"][pend]  # (P,) each
        hp = h[b, slot]  # (P, C) the slot that edit is read at
        log_rate = torch.log(pi[b, slot].gather(1, kind[:, None]).squeeze(1).clamp(min=1e-30))  # (P,)
        log_q = torch.zeros_like(log_rate)  # a deletion has no token
        for k in (INS, SUB):  # the token head runs on that kind's edits only
            sel = kind == k
            log_q[sel] = F.log_softmax(self.token_logits(hp[sel], k), -1).gather(1, tok[sel, None]).squeeze(1)
        term = -log_rate - log_q + batch["op_logk"][pend] - 1  # (P,)
        edits = torch.zeros(B, device=x.device).index_add_(0, b, term)  # (B,)
        # the bound: times w(t) / q(t) per row, per unit of the rows (fixed by the data, not by the noise)
        n_units = batch["n_units"].sum()
        per, w = n_units.clamp(min=1), batch["weight"]  # (), (B,)
        survival_loss, edit_loss = (w * survival).sum() / per, (w * edits).sum() / per
        # + 0 x ins_head: DDP wants every parameter in every step's graph (x0 = enough masks: no insertion ever)
        loss = survival_loss + edit_loss + 0.0 * self.ins_head.weight.sum()
        n = n_units.detach().float()
        metrics = {"n_tokens": n, "nll": loss.detach(), "nll_tokens": n,  # the loss is the bound per unit ...
                   "survival_loss": survival_loss.detach(), "edit_loss": edit_loss.detach(),
                   "pending": (pend.sum() / n.clamp(min=1)).detach()}  # edits still needed per unit
        if self.config.x0 == "empty" and not self.training:  # ... or, x0 empty, the aligned bound (aligned_edits)
            metrics["nll"] = (w * (survival.detach() + self.aligned_edits(batch, h.detach(), pi.detach()))).sum() / per
            metrics["alignment_slack"] = loss.detach() - metrics["nll"]
        return loss, metrics

    @torch.no_grad()
    def aligned_edits(self, batch: dict, h: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
        """x0 empty: the edit term averaged over the alignments of x_t to the target (as flexmdm.py's). Per gap g
        and token a the loss's term is n (log n - 1 - log pi_g - log Q_g(a)), n the a's pending there; x_t does
        not say n ('abca' -> 'a': the first a or the last?), so its mean over the equally likely alignments
        replaces it: a bound on the chain on x_t, below the loss by a slack no network changes.
        h (B, W, C), pi (B, W, 3) -> (B,) per row, w outside."""
        y, x, start = batch["y"], batch["x"], batch["start"]
        n_slots = batch["n_real"] - start - 1  # (B,) x_t's tokens: after the prefix and START
        B, K, L = y.size(0), int(n_slots.max()), y.size(1)
        k = torch.arange(K, device=y.device)[None, :]
        xt = torch.where(k < n_slots[:, None], x.gather(1, (start[:, None] + 1 + k).clamp(max=x.size(1) - 1)), -1)
        P = alignment_marginals(y, xt)  # (B, K, L + 2) each x_t token on an equal target token
        ylen = (y >= 0).sum(1)  # (B,)
        pos = torch.arange(L + 2, device=y.device)
        # boundaries of the gaps: the start (position 0), x_t's tokens, the end (position ylen + 1); P(pos <= i)
        cdf = torch.cat([torch.ones(B, 1, L + 2, dtype=P.dtype, device=P.device), P.cumsum(2),
                         torch.zeros(B, 1, L + 2, dtype=P.dtype, device=P.device)], 1)  # (B, K + 2, L + 2)
        is_end = torch.arange(K + 2, device=y.device)[None, :] == (n_slots + 1)[:, None]  # (B, K + 2)
        cdf = torch.where(is_end[:, :, None], (pos[None, :] >= (ylen + 1)[:, None]).double()[:, None, :], cdf)
        # target token i is missing in gap j (between boundaries j and j + 1) w.p. P(lower < i) - P(upper <= i)
        q = (cdf[:, :K + 1, :L] - cdf[:, 1:, 1:L + 1]).clamp(min=0)  # (B, K + 1, L)
        q = q * ((torch.arange(K + 1, device=y.device)[None, :] <= n_slots[:, None])[:, :, None]
                 & (torch.arange(L, device=y.device)[None, :] < ylen[:, None])[:, None, :])
        same = ((y[:, :, None] == y[:, None, :]) & (y[:, :, None] >= 0)).double()  # (B, L, L)
        n_tok = torch.bmm(q, same)  # (B, K + 1, L): n_bar of the token at i, in gap j
        n_gap = q.sum(2)  # (B, K + 1) n_bar of gap j
        cols = (start[:, None] + torch.arange(K + 1, device=y.device)[None, :]).clamp(max=h.size(1) - 1)
        log_pi = torch.log(pi[..., INS].gather(1, cols).double().clamp(min=1e-30))  # (B, K + 1)
        out = torch.zeros(B, dtype=torch.float64, device=y.device)
        for r in range(0, B, 8):  # the insertion head's (rows, K + 1, V) logits a few rows at a time
            hq = h[r:r + 8].gather(1, cols[r:r + 8, :, None].expand(-1, -1, h.size(2)))  # (b, K + 1, C)
            log_q = F.log_softmax(self.token_logits(hq, INS), -1).gather(
                2, y[r:r + 8].clamp(min=0)[:, None, :].expand(-1, K + 1, -1)).double()  # (b, K + 1, L)
            qq = q[r:r + 8]
            tok = torch.where(qq > 0, qq * (torch.log(n_tok[r:r + 8].clamp(min=1e-300)) - log_q), 0.0).sum((1, 2))
            out[r:r + 8] = tok + (n_gap[r:r + 8] * (-1 - log_pi[r:r + 8])).sum(1)
        return out.float()

    # ------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Tau-leaping from x0 to t = 1 (the paper's sampler for the edit chain), all rows at once.

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after each row's end (with
        history=True also the canvas after every step). The canvas starts as x0 (at most max_new_tokens masks, or
        nothing). Step i reads x_t at t = i / steps; over [t, s] each edit fires with probability its rate integrated
        over the step: rho (kappa_s - kappa_t), for a mask (total rate w) (kappa_s - kappa_t) / (1 - kappa_t). Per
        gap at most one insertion, per position at most one deletion or substitution (which, by their rates); tokens
        drawn from Q in float64; the prompt is never edited. The last step (s = 1) edits every mask left and fires
        every other edit still expected at least 1/2. Insertions past max_new_tokens: a random subset that fits.
        mask_order='confidence': as many mask edits per row as the draws fired (surest_mask_edits).
        self.edit_counts: per row (B,) 'ins', 'del', 'sub', and of those 'del_mask', 'sub_mask' the edits of masks."""
        c, dev = self.config, prompt.device
        B, Lc = prompt.size(0), max_new_tokens  # Lc: the most canvas tokens a row may have
        base, start = self.prefix(prompt, prompt_lens, Lc)  # (B, W + 1) prompt, START, fill; (B,) START's column
        W = base.size(1) - 1
        k = torch.arange(Lc, device=dev)[None, :]  # (1, Lc) canvas index
        j = torch.arange(Lc + 1, device=dev)[None, :]  # (1, Lc + 1) slot: 0 = START, j = canvas token j - 1
        seq = torch.full((B, Lc), self.mask_id, dtype=torch.long, device=dev)  # the canvas: its first n are real
        n = torch.full((B,), min(self.max_len, Lc) if c.x0 == "masks" else 0, dtype=torch.long, device=dev)
        made = torch.zeros(5, B, dtype=torch.long, device=dev)  # per row: ins, del, sub, and del, sub of a mask
        steps = []

        def draw(logits: torch.Tensor) -> torch.Tensor:  # (m, V) -> (m,): argmax p / E, E ~ Exp(1) (Gumbel-max)
            e = -torch.rand(logits.shape, dtype=torch.float64, device=dev, generator=generator).log()
            return (logits.double().softmax(-1) / e).argmax(-1)

        def rand() -> torch.Tensor:
            return torch.rand(B, Lc + 1, device=dev, generator=generator)

        for i in range(c.steps):
            t, s = i / c.steps, (i + 1) / c.steps
            kt, ks, last = t ** 3, s ** 3, i == c.steps - 1  # kappa at both ends of the step
            x = base.clone()
            x.scatter_(1, torch.where(k < n[:, None], start[:, None] + 1 + k, W), seq)  # past n: column W
            h = self.trunk(x[:, :W], start + 1 + n, torch.full((B,), t, device=dev), start)  # (B, W, C)
            h = h.gather(1, (start[:, None] + j)[:, :, None].expand(-1, -1, h.size(-1)))  # (B, Lc + 1, C)
            gap_ok = j <= n[:, None]  # (B, Lc + 1) START and the canvas
            pos_ok = (j >= 1) & gap_ok  # the canvas
            old = F.pad(seq, (1, 0), value=-1)  # (B, Lc + 1) the token at each slot, -1 at START
            is_mask = pos_ok & (old == self.mask_id)
            rho, share = self.rates(h, is_mask)
            e = rho.double() * (ks - kt)  # (B, Lc + 1, 3) expected edits over [t, s]
            e_ins = e[..., INS] * gap_ok
            e_ds = torch.where(is_mask, (ks - kt) / (1 - kt), (e[..., DEL] + e[..., SUB]) * pos_ok)
            del_share = rho[..., DEL] / (rho[..., DEL] + rho[..., SUB]).clamp(min=1e-30)
            p_del = torch.where(is_mask, share[..., 0], del_share)
            fire = (e_ds >= 0.5) | is_mask if last else rand() < e_ds.clamp(max=1)
            is_del = fire & (rand() < p_del)  # deletion or substitution: a draw, at every step
            fire_ins = e_ins >= 0.5 if last else rand() < e_ins.clamp(max=1)
            new = old.clone()
            given = torch.zeros_like(is_mask)  # substitutions whose token is already chosen (confidence)
            if c.mask_order == "confidence" and bool(is_mask.any()):
                fire, is_del, given = self.surest_mask_edits(h, share, is_mask, fire, is_del, new)
            is_sub = fire & ~is_del
            room = Lc - (n - is_del.sum(1))  # (B,) insertions that fit
            if bool((fire_ins.sum(1) > room).any()):  # keep a random subset that fits
                order = rand().masked_fill(~fire_ins, 2.0).argsort(1).argsort(1)
                fire_ins = fire_ins & (order < room[:, None])
            drawn = is_sub & ~given
            new[drawn] = draw(self.token_logits(h[drawn], SUB))
            ins = torch.full_like(old, -1)
            ins[fire_ins] = draw(self.token_logits(h[fire_ins], INS))
            # apply: emit, slot by slot, its token (kept or substituted, unless deleted), then its insertion
            emit = torch.stack([new, ins], 2).view(B, 2 * (Lc + 1))
            keep = torch.stack([pos_ok & ~is_del, fire_ins], 2).view(B, 2 * (Lc + 1))
            out = torch.full((B, Lc + 1), self.mask_id, dtype=torch.long, device=dev)
            out.scatter_(1, torch.where(keep, keep.long().cumsum(1) - 1, Lc), emit)  # at most Lc kept
            seq, n = out[:, :Lc], keep.sum(1)
            made += torch.stack([fire_ins, is_del, is_sub, is_del & is_mask, is_sub & is_mask]).sum(2)
            if history:
                steps.append(torch.where(k < n[:, None], seq, -1))
        self.edit_counts = dict(zip(("ins", "del", "sub", "del_mask", "sub_mask"), made))
        out = torch.where(k < n[:, None], seq, -1)
        if c.eos_id is not None and self.rows_data:  # a trailing data eos is the end, not a token
            out = out.masked_fill((k == (n - 1)[:, None]) & (out == c.eos_id), -1)
        return (out, steps) if history else out

    def prefix(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, Lc: int) -> tuple[torch.Tensor, torch.Tensor]:
        """generate()'s fixed part of x: prompt (B, P), prompt_lens (B,), Lc canvas tokens at most -> base
        (B, W + 1): the prompt (or a bos opening an unconditional row of rows data), START, then fill (W = prefix
        + START + Lc; column W collects what is past a row's canvas); and start (B,), START's column."""
        c, dev, B = self.config, prompt.device, prompt.size(0)
        prompt_lens = prompt_lens.long()
        add_bos = (prompt_lens == 0) & (c.bos_id is not None and self.rows_data)  # (B,)
        start = prompt_lens + add_bos.long()  # (B,)
        P = int(start.max()) if B else 0
        base = torch.full((B, P + 2 + Lc), self.fill_id, dtype=torch.long, device=dev)
        Pp = min(prompt.size(1), P)
        in_prompt = torch.arange(Pp, device=dev)[None] < prompt_lens[:, None]  # (B, Pp)
        base[:, :Pp] = torch.where(in_prompt, prompt[:, :Pp], base[:, :Pp])
        if c.bos_id is not None:
            base[:, 0] = torch.where(add_bos, c.bos_id, base[:, 0])
        return base.scatter_(1, start[:, None], self.start_id), start

    def surest_mask_edits(self, h, share, is_mask, fire, is_del, new):
        """mask_order='confidence' (MaskGIT's order, as mdlm.py's; not the chain the loss bounds): per row as many
        mask edits as the draws fired, at the masks whose likeliest outcome (delete: p_del; substitute by a: p_sub
        Q_sub(a)) is likeliest, as that outcome. h (B, S, C), share (B, S, 2), is_mask, fire, is_del (B, S) ->
        fire, is_del, and given (B, S): the substitutions whose token it wrote into new (B, S)."""
        lp_sub = self.token_logits(h[is_mask], SUB).log_softmax(-1) + share[is_mask][:, 1:].log()  # (M, V)
        lp_best, best_tok = lp_sub.max(-1)  # (M,) each
        lp_del = share[is_mask][:, 0].log()  # (M,)
        conf = torch.full(is_mask.shape, float("-inf"), device=h.device)  # (B, S); -inf off the masks
        conf[is_mask] = torch.maximum(lp_del, lp_best)
        rank = conf.argsort(1, descending=True).argsort(1)  # (B, S) 0 = the surest mask
        chosen = is_mask & (rank < (fire & is_mask).sum(1, keepdim=True))  # as many as the draws fired
        mask_del = torch.zeros_like(is_mask)
        mask_del[is_mask] = lp_del >= lp_best
        given = chosen & ~mask_del
        new[given] = best_tok[given[is_mask]]
        return torch.where(is_mask, chosen, fire), torch.where(is_mask, chosen & mask_del, is_del), given
