"""
MDLM: a masked diffusion language model, trained on a bound on the NLL and sampled ancestrally.

Lineage: Sahoo et al. 2024, "Simple and Effective Masked Diffusion Language Models" (MDLM), itself the
continuous-time, absorbing-state case of D3PM (Austin et al. 2021). What changes from ARLM (arlm.py):
- the transformer is bidirectional (no causal mask): every position sees the whole noised sequence;
- noising: at a time t ~ U[t_min, 1] each target token is replaced by a mask token with probability
  (1 - eps) t (the log-linear schedule, alpha_t = 1 - (1 - eps) t, eps = 1e-3); t is drawn antithetically
  (stratified over the batch) to lower the variance of the loss; time_sampling='count' draws the number of
  masks instead, the same bound with less variance (collate says why). Evaluation always counts: that is
  an unbiased estimate of the bound of the chain generate() runs (eps = 0), where t ~ U[t_min, 1] leaves
  out [0, t_min] and reads about 0.1% below it;
- SUBS parameterisation: the mask token gets logit -inf (the model never predicts "still masked") and an
  unmasked position copies its input, so it costs nothing; the loss is the CE of the masked tokens weighted
  by -alpha'_t / (1 - alpha_t) = 1/t, summed over the canvas (below), divided by the fixed number of
  units (below): an upper bound on the NLL per unit, so exp(loss) bounds the perplexity;
- the sampler starts from all-mask and walks t from 1 to ~0: going from t to s < t each masked position is
  revealed with probability (t - s)/t, by a draw from p(x0) in float64 (float32 Gumbel draws lower the
  diversity); the network only runs again on rows where something was revealed (MDLM's "cache": with no
  time input the network is a function of x alone, so this is exact, just faster).
Time conditioning (adaLN, as in DiT) is an option, off by default as in MDLM.

The canvas. A masked model fills a fixed number of positions, so it must also learn where its target
ends. Each row is the prompt followed by a canvas of `max_target_len + 1` positions (`block_size + 1` when
the data has no prompts; exactly the `block_size` window for stream data, which has no pad): the target,
then pad. The pads are targets like any token (predicting pad is how the model says "the target is
over"), and the one extra position means every target, even the longest, is followed by at least one pad.
Rows whose prompt is shorter than the longest in the batch end with positions outside their canvas, which
attention ignores. Prompt tokens are never masked and always visible.

The NLL unit (models/README.md): the NLL of a row's target tokens plus one end-of-sequence event, divided by
(target tokens + 1). The canvas is a one-to-one image of (target, its end), so the bound on -log p(canvas)
bounds the NLL of the target and its end: the end event (the first pad, or the data's own eos) is a canvas
position and so in the numerator, never assumed free. Every other canvas position is there too (a leading
bos of an unconditional row, the pads after the first): predicting them costs >= 0, so the bound only gets
looser, by about nothing once they are learned. The divisor counts the target tokens (not a leading bos,
not a trailing data eos, which is the end) + 1 per row; a stream window has no end, each of its tokens is a unit.
generate(max_new_tokens=L) fills a canvas of L + 1 positions (L for stream data) and returns at most L
tokens, up to the first pad.
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
    # Two additions for small bidirectional models (off by default; the star configs turn them on). A lookup on
    # star graphs needs to know each edge node's partner, its neighbour in the prompt. A causal model gets a
    # "previous token" head for free from its mask; a small bidirectional RoPE model did not learn one in 20k
    # steps (0% on star_easy; bench/results/mdlm_mlm_star_easy_probes.json), and with these it learns the
    # lookups by 4k steps and solves star_easy.
    neighbour_mix: bool = False  # add linear maps of the left and right neighbours' embeddings to each position
    abs_pos: bool = False  # learned absolute positions added to the embeddings (GPT-2), besides RoPE: which
    #                        node of an edge a position holds is then visible, not only offsets between them
    time_cond: bool = False  # adaLN time conditioning (DiT); MDLM trains without it
    # diffusion
    schedule_eps: float = 1e-3  # mask probability at time t is (1 - eps) t
    # training times t ~ U[t_min, 1] (MDLM's sampling_eps): the 1/t weight stays finite; 1.0 trains the all-mask
    # term alone, a one-pass predictor decoded with steps=1 (the speedrun)
    t_min: float = 1e-3
    antithetic: bool = True  # stratified times over the batch
    time_sampling: str = "continuous"  # 'continuous': t ~ U[t_min, 1] (MDLM); 'count': k masks ~ U{1..L}, weight
    #                                    L/k: the same bound (at eps = 0) with less variance, see collate
    # sampling
    steps: int = 128  # ancestral steps from t = 1 to t = sample_eps
    sample_eps: float = 1e-5  # the last time of the sampler
    noise_removal: bool = True  # fill what is still masked at the end with the argmax (MDLM); else a draw
    order: str = "random"  # 'random': MDLM's ancestral reveals; 'confidence': as many a step, the most
    #                        confident masks first, by their argmax (MaskGIT's order; not MDLM's sampler)
    cache: bool = True  # run the network only on rows that changed (False: every row, every step)


# The allowed values of every Config field but the bools and the data's (the engine refuses anything else
# before the first step, in one line naming the key): (lo, hi) a number in [lo, hi], a tuple the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              schedule_eps=(0.0, 0.5), t_min=(1e-6, 1.0), time_sampling=("continuous", "count"),
              steps=(1, 100_000), sample_eps=(0.0, 0.5), order=("random", "confidence"))


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
        # adaLN-Zero (DiT): the time embedding sets a shift, scale and gate per sublayer; zero at init
        self.ada = nn.Linear(c.n_embd, 6 * c.n_embd) if c.time_cond else None

    def forward(self, x, cos, sin, attn_mask, slots, B, W, cond=None, out=None):
        # x (N, C) -> (N, C); with out = (rows of x, their flat positions in (B*W)): (M, C), the outputs at those
        # positions only (every position is still a key)
        rows, at = out if out is not None else (None, None)
        res = x if rows is None else x[rows]  # the residual stream of the positions whose outputs are wanted
        if cond is None:  # pre-norm residual blocks, as in arlm.py
            x = res + self.attn(self.norm1(x), cos, sin, attn_mask, slots, B, W, at)
            return x + self.mlp(self.norm2(x))
        mod = self.ada(cond)  # (B, 6C): one modulation per row, then each position takes its row's
        mod = mod.repeat_interleave(W, 0) if slots is None else mod.index_select(0, slots // W)  # (N, 6C)
        shift1, scale1, _, _, _, _ = mod.chunk(6, dim=-1)
        _, _, gate1, shift2, scale2, gate2 = (mod if rows is None else mod[rows]).chunk(6, dim=-1)
        x = res + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, cos, sin, attn_mask, slots, B, W, at)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class TimeEmbedding(nn.Module):
    """sigma (B,) -> (B, C): sinusoidal features of the total noise sigma(t) = -log(1 - (1-eps) t), then an
    MLP (DiT's timestep embedder; MDLM conditions on sigma)."""

    def __init__(self, n_embd: int, n_freq: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(n_freq // 2) / (n_freq // 2)),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(n_freq, n_embd), nn.SiLU(), nn.Linear(n_embd, n_embd), nn.SiLU())

    def forward(self, sigma):
        angles = sigma.float()[:, None] * self.freqs[None]  # (B, n_freq/2)
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=-1))


class Model(nn.Module):
    nll_kind = "bound"  # the loss is an upper bound on the NLL (models/README.md)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        # the data's mask token when it has one (star: <mask>), else a new id past its vocabulary
        self.mask_id = c.mask_id if c.mask_id is not None else c.vocab_size
        self.n_vocab = max(c.vocab_size, self.mask_id + 1)
        self.rows_data = c.pad_id is not None  # rows end in pad; stream windows (no pad) have no end
        # the longest target, + 1 so that even it is followed by a pad: its end (stream windows: the window)
        self.canvas_len = (c.max_target_len if c.max_target_len > 0 else c.block_size) + int(self.rows_data)
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.wpe = nn.Embedding(2 * c.block_size + 2, c.n_embd) if c.abs_pos else None  # any prompt + canvas sample.py allows
        self.time_emb = TimeEmbedding(c.n_embd) if c.time_cond else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.final_ada = nn.Linear(c.n_embd, 2 * c.n_embd) if c.time_cond else None
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
            if "ada" in name:  # adaLN-Zero: every block starts as the identity, the final norm unmodulated
                nn.init.zeros_(p)
        self.forward_calls = self.forward_rows = 0  # network runs (and rows) in the last generate()

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1 - self.config.schedule_eps) * t)  # total noise: 1 - exp(-sigma) = (1-eps) t

    def trunk(self, idx, keep=None, t=None, cidx=None):
        """idx (B, W) ids, keep (B, W) False after a row's canvas (or None), t (B,) times, cidx (B, L) canvas
        columns (or None) -> hidden states at the canvas (B, L, C); without cidx at every position (B, W, C),
        zero after a row's canvas. Two savings, the same numbers: unpadded, all but attention runs on the real
        positions only, packed as (N, C), so padding costs no matmul (prompts differ in length: 21% of a
        star_medium batch is padding); and the last block runs its attention output and MLP at the canvas only
        (the prompt's outputs are never read, and on star graphs the prompt is most of a row)."""
        B, W = idx.shape
        if W > self.cos.size(0):  # a longer canvas than training saw: extend the rotary tables
            self.cos, self.sin = (a.to(idx.device) for a in rotary_tables(W, self.config.n_embd // self.config.n_head))
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2)
        attn_mask = keep[:, None, None, :] if keep is not None else None  # (B, 1, 1, W)
        cond = self.time_emb(self.sigma(t)) if self.time_emb is not None else None  # (B, C)
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
            x = block(x, cos, sin, attn_mask, slots, B, W, cond, out if i == len(self.blocks) - 1 else None)
        x = self.norm(x)
        if cond is not None:
            mod = self.final_ada(cond)  # (B, 2C): each position takes its row's
            at = out[1] if out is not None else slots  # the positions x holds (None: all, in order)
            mod = mod.repeat_interleave(W, 0) if at is None else mod.index_select(0, at // W)  # (N or M, 2C)
            shift, scale = mod.chunk(2, dim=-1)
            x = x * (1 + scale) + shift
        if cidx is not None:
            return x.view(B, cidx.size(1), -1)  # (B, L, C)
        if slots is None:  # no padding
            return x.view(B, W, -1)
        return x.new_zeros(B * W, x.size(1)).index_copy(0, slots[:n], x[:n]).view(B, W, -1)  # (B, W, C), 0 at padding

    def canvas_logits(self, xt, cidx, keep=None, t=None) -> torch.Tensor:
        """xt (B, W), cidx (B, L) canvas columns -> logits (B, L, V) in float32, the mask logit at -inf (SUBS:
        the model only proposes real tokens). The head runs on the canvas only."""
        h = self.trunk(xt, keep, t, cidx)  # (B, L, C)
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
        """Clean rows (B, T) -> noised rows. Each row gets a time t and its canvas tokens are masked with
        probability (1 - eps) t; the prompt stays clean. A row shorter than prompt + canvas is padded (stream
        windows have no pad and fill the canvas exactly)."""
        c, dev = self.config, tokens.device
        B, T = tokens.shape
        prompt_lens = prompt_lens.long()
        L = self.canvas_len
        cidx, keep, W = self.layout(prompt_lens, L, dev)
        fill = c.pad_id if c.pad_id is not None else 0  # stream data: W == T, nothing to fill
        x0 = F.pad(tokens, (0, max(0, W - T)), value=fill)[:, :W]  # (B, W)
        target = x0.gather(1, cidx)  # (B, L) the canvas: target then pad
        # antithetic (stratified) times: example i draws its u in [i/B, (i+1)/B), so the batch covers [0, 1)
        u = torch.rand(B, device=dev, generator=generator)
        if c.antithetic:
            u = (u / B + torch.arange(B, device=dev) / B) % 1
        if c.time_sampling == "count" or not self.training:  # evaluation: always the exact bound (docstring)
            # The same bound, less variance. Given that k of the L canvas positions are masked, the 1/t weight
            # integrates to int_0^1 (1/t) C(L,k) t^k (1-t)^(L-k) dt = 1/k, so (at eps = 0) the ELBO is
            # E_{k ~ U{1..L}} [(L/k) sum_masked CE], the any-order autoregressive form (Hoogeboom et al. 2022;
            # Ou et al. 2024). With t ~ U a row with one mask at t = 0.001 weighs 1000 and, after gradient
            # clipping, can drown a whole batch; here no weight exceeds L and no row is left unmasked.
            k = (u * L).long().clamp(max=L - 1) + 1  # (B,) masks per row, stratified like t
            rank = torch.rand(B, L, device=dev, generator=generator).argsort(1)  # (B, L) a random permutation
            masked = rank < k[:, None]  # (B, L) exactly k positions, a uniformly random set
            t = k.float() / L  # so the loss's 1/t is L/k
        else:
            t = c.t_min + (1 - c.t_min) * u  # (B,) in [t_min, 1]
            move = (1 - c.schedule_eps) * t  # mask probability 1 - alpha_t
            masked = torch.rand(B, L, device=dev, generator=generator) < move[:, None]  # (B, L)
        xt = x0.scatter(1, cidx, torch.where(masked, self.mask_id, target))
        return {"xt": xt, "cidx": cidx, "keep": keep, "target": target, "t": t,
                "n_units": self.units(target, prompt_lens)}

    def units(self, target: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
        """target (B, L) canvas -> the number of NLL units in the batch (models/README.md): per row the target
        tokens, which are the canvas's real tokens less a leading bos (an unconditional row's context) and
        a trailing data eos (the end itself), + 1 for the end. Stream windows: every position."""
        c = self.config
        if not self.rows_data:
            return torch.tensor(target.numel(), device=target.device)
        n_real = (target != c.pad_id).sum(1)  # (B,) pad sits only at the end
        lead_bos = (prompt_lens == 0) & (target[:, 0] == c.bos_id) & (n_real > 0)  # (B,) never with bos_id None
        last = target.gather(1, (n_real - 1).clamp(min=0)[:, None]).squeeze(1)
        end_eos = (last == c.eos_id) & (n_real > lead_bos.long())  # a lone bos is no eos (GPT-2: bos == eos)
        return (n_real - lead_bos.long() - end_eos.long() + 1).sum()

    def forward(self, batch: dict):
        xt, cidx, target, t = batch["xt"], batch["cidx"], batch["target"], batch["t"]
        t_in = t if self.config.time_cond else None
        logits = self.canvas_logits(xt, cidx, batch["keep"], t_in)  # (B, L, V)
        B, L, V = logits.shape
        masked = xt.gather(1, cidx) == self.mask_id  # (B, L)
        # SUBS: an unmasked position copies its input (log p = 0): only masked positions are scored
        nll = F.cross_entropy(logits.view(-1, V), torch.where(masked, target, -1).view(-1), ignore_index=-1,
                              reduction="none").view(B, L)  # exactly 0 where unmasked
        # continuous-time ELBO: weight -alpha'_t / (1 - alpha_t) = (1-eps) / ((1-eps) t) = 1/t; summed over
        # the whole canvas (every position's cost, the end's included) and divided by the units of the rows
        n_units = batch["n_units"]  # fixed by the data, not by the noise
        loss = (nll / t[:, None]).sum() / n_units.clamp(min=1)
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

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Ancestral sampling of the reverse process (MDLM's "ddpm_cache" sampler), vectorised over the batch.

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after the target.
        The canvas has max_new_tokens + 1 positions (rows data), as in training: room for the end.
        Times t_i = 1 - i (1 - sample_eps) / steps. From t to s each masked position is revealed with
        probability (t - s)/t (else stays masked, probability s/t), taking a token drawn from p(x0 | x_t);
        order='confidence' reveals as many in each row but picks the masks with the highest top probability
        and takes their argmax (the order of MaskGIT and of mlm.py; no longer MDLM's reverse process).
        Rows where nothing was revealed keep their logits: with no time input the network would return the
        same thing (config.cache=False reruns it on every row at every step: the reference). At the end
        what is still masked takes the argmax of p(x0) (noise_removal). With history=True also returns the
        canvas after every step ((B, max_new_tokens) tensors; masked positions show the mask id, pad shows as -1)."""
        c, dev = self.config, prompt.device
        B, L = prompt.size(0), max_new_tokens + int(self.rows_data)  # the canvas, with room for the end
        prompt_lens = prompt_lens.long()
        cidx, keep, W = self.layout(prompt_lens, L, dev)
        col = torch.arange(W, device=dev)[None, :]
        P = min(prompt.size(1), W)
        x = torch.full((B, W), c.pad_id if c.pad_id is not None else self.mask_id, dtype=torch.long, device=dev)
        x[:, :P] = torch.where(col[:, :P] < prompt_lens[:, None], prompt[:, :P], x[:, :P])
        canvas = torch.full((B, L), self.mask_id, dtype=torch.long, device=dev)  # start: all mask
        logits = torch.zeros(B, L, self.n_vocab, device=dev)  # (B, L, V) the last p(x0) logits of each row
        stale = torch.ones(B, dtype=torch.bool, device=dev)  # rows whose logits are out of date
        reuse = c.cache and not c.time_cond  # the cache is exact only when the network ignores t
        self.forward_calls = self.forward_rows = 0
        steps = []

        def refresh(rows_needed: torch.Tensor, t: float):
            x.scatter_(1, cidx, canvas)
            rows = rows_needed.nonzero().squeeze(1)
            if len(rows) == 0:
                return
            t_in = torch.full((len(rows),), t, device=dev) if c.time_cond else None
            if len(rows) == B:  # the whole batch: no gather/scatter copies
                logits[:] = self.canvas_logits(x, cidx, keep, t_in)
            else:
                logits[rows] = self.canvas_logits(x[rows], cidx[rows], keep[rows] if keep is not None else None, t_in)
            self.forward_calls += 1
            self.forward_rows += len(rows)

        def shown(canvas: torch.Tensor) -> torch.Tensor:  # history: the first max_new_tokens, pad as -1
            return torch.where(canvas == c.pad_id, -1, canvas)[:, :max_new_tokens] if self.rows_data else canvas.clone()

        def draw(lg: torch.Tensor) -> torch.Tensor:
            # categorical draw from softmax(lg) in float64: argmax p / E with E ~ Exp(1) (the Gumbel-max trick)
            p = lg.double().softmax(-1)  # (n, V)
            e = -torch.rand(p.shape, dtype=torch.float64, device=dev, generator=generator).log()
            return (p / e).argmax(-1)

        ts = [1.0 - i * (1.0 - c.sample_eps) / c.steps for i in range(c.steps + 1)]
        for i in range(c.steps):
            t, s = ts[i], ts[i + 1]
            masked = canvas == self.mask_id  # (B, L)
            if not masked.any():
                break
            left = masked.any(1)
            refresh((stale & left) if reuse else left.new_ones(B), t)
            u = torch.rand(B, L, dtype=torch.float64, device=dev, generator=generator)
            reveal = masked & (u < (t - s) / t)  # q(x_s | x_t, x0): unmask with probability (t - s)/t
            if c.order == "confidence":  # the same number per row, but the masks the model is surest of
                conf = logits.softmax(-1).amax(-1).masked_fill(~masked, -1.0)  # (B, L) top probability
                rank = conf.argsort(1, descending=True).argsort(1)  # (B, L) 0 = the most confident
                reveal = masked & (rank < reveal.sum(1, keepdim=True))
                canvas[reveal] = logits[reveal].argmax(-1)
            elif reveal.any():
                canvas[reveal] = draw(logits[reveal])
            stale = reveal.any(1)
            if history:
                steps.append(shown(canvas))
        masked = canvas == self.mask_id
        if masked.any():  # t -> 0: what is still masked is revealed now
            left = masked.any(1)
            refresh((stale & left) if reuse else left.new_ones(B), ts[-1])
            canvas[masked] = logits[masked].argmax(-1) if c.noise_removal else draw(logits[masked])
            if history:
                steps.append(shown(canvas))
        out = self.finish(canvas)[:, :max_new_tokens]  # a canvas with no pad in it is cut at the length limit
        return (out, steps) if history else out
