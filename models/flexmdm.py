"""
FlexMDM: a masked diffusion model that also inserts masks, so it chooses the length of what it writes.

Lineage: Kim et al. 2025, "Any-Order Flexible Length Masked Diffusion" (FlexMDM, arXiv 2509.01025; code
github.com/brianlck/FlexMDM). It is MDLM (mdlm.py) with a second clock. What changes from mdlm.py:
- no fixed canvas. Each target token i gets an insertion time T1 ~ alpha and an unmasking time T2 ~ beta
  truncated to [T1, 1]; at time t it is absent (t < T1), a mask (T1 <= t < T2) or itself (t >= T2). With the
  linear schedules of the paper's OpenWebText setup (alpha_t = beta_t = t, config/openwebtext/
  any_order_small.yaml): T1 ~ U[0, 1], T2 ~ U[T1, 1]. x_t is the prompt, then the present tokens and masks
  in order, packed: t = 0 is the prompt alone, t = 1 the clean row. The prompt is never noised;
- the bidirectional transformer reads x_t and t (adaLN, always on: how many tokens are still missing depends
  on t) and gives two things: token logits at every mask (SUBS, as MDLM: the mask logit is -inf) and, for
  every gap of x_t, g_hat, the expected number of tokens still missing there. Gap k is the one just before
  canvas token k; the gap after the last token is read at an END slot placed after it (the official code
  reads it at the first pad, which its attention mask lets through);
- the loss is the continuous-time ELBO (below): the masked tokens' CE weighted beta'/(1 - beta) = 1/(1 - t),
  plus, per gap, the Poisson Bregman divergence g_hat - g + g log(g / g_hat) weighted alpha'/(1 - alpha)
  = 1/(1 - t), where g is the true number of missing tokens there (bregman.py, jump_kernel_elbo; g log g = 0
  at g = 0). It is summed over the row and divided by the fixed count of NLL units (below);
- the sampler starts from the prompt alone and runs tau-leaping from t = 0 to 1 (sampling.py,
  any_order_mask_insertion_tau_leaping_sampling): per step each mask is revealed with the schedule's
  probability and each gap gets Poisson new masks. That is our default (unmask='sample'); the official
  function's default is its confidence mode (the most confident masks first, as their argmax), which is
  unmask='confidence' here with score='prob_diff'. generate() says where each departs from the official one.

Why the loss bounds the NLL. Generation is a continuous-time Markov chain on sequences: a gap with g_hat
inserts a mask at rate alpha'/(1-alpha) g_hat, a mask is revealed as v at rate beta'/(1-beta) p(v | x_t, t).
Given the clean target x the noising above is another chain (on x_t plus which target token each slot is):
each missing token is inserted at rate alpha'/(1-alpha) (the hazard of T1), each mask revealed at rate
beta'/(1-beta) (the hazard of T2 given T2 > t >= T1, whatever T1 was). Both start from the prompt, the
second ends at x, so -log p(x) <= KL(path of the noising || path of the model) (data processing), and the
KL of two chains is E int_0^1 sum over jumps of [R_model - R_true + R_true log(R_true / R_model)] dt. Let the
model split a gap's insertions evenly over the g target tokens missing there (inserting into an empty gap
leaves the target for good): per gap the g terms add up to the Bregman divergence above; per mask the
reveal terms add up to the CE (the model's p sums to 1). So the loss estimates an upper bound on
-log p(target tokens, their number): the joint NLL of the tokens and the length, which is the target plus its
end (models/README.md's unit). Hence nll_kind = "bound". The bound is on the continuous-time model; the
sampler below is a discretisation of it (as MDLM's).

The NLL reported (evaluation) is tighter than the loss. The loss's chain knows which target token each slot
is; the network sees x_t only, and x_t often does not say (two masks over 'abc' are ab, ac or bc), so the loss
charges each mask the CE of the token it happens to be and each gap the Bregman term of the count it happens
to miss. Every alignment of x_t's slots to the target that fits is equally likely given x_t and the target
(the tokens' clocks are i.i.d.), so the same two terms can be averaged over them (alignment_marginals): per
mask KL(pi, p) with pi the posterior of its token, per gap the Bregman term at the posterior mean count. That
bounds the chain on x_t itself (the one the network and the sampler run), is below the loss by
sum H(pi) + E[g log g] - g_bar log g_bar, which no network can change, and so has the loss's gradient in
expectation. The loss stays as the paper's (training is unchanged). On the shipped star_easy weights the
aligned bound is 0.25 nats per unit where the loss's is 1.00.

Time sampling (the 1/(1 - t) weights). The official code draws t antithetically in [0, 1 - 1e-6] with the
weights as they are (time_sampling='uniform' here). Near t = 1 few masks remain, each weighing 1/(1 - t):
the CE estimate's second moment grows like log(1/eps)^2 and a single late mask can dominate a batch.
The default here, 'sqrt', draws t = 1 - (1 - u)^2 (density q(t) = 1 / (2 sqrt(1 - t)), more times near 1)
and weighs each row by 1 / q(t): the same integral over all of [0, 1), unbiased, nothing cut off, and
every moment above is finite. The length head's output is scaled by (1 - alpha_t): the truth E[g | x_t]
goes to 0 as t -> 1, and the Bregman term charges g_hat / (1 - t) where g = 0, so a head that could not
reach 0 would make the integral diverge (the official head is softplus x max_length, without the factor).

The NLL unit (models/README.md): the NLL of a row's target tokens plus one end-of-sequence event, divided by
(target tokens + 1). The noised sequence is the row after its prompt: a leading bos of an unconditional row
is context like a prompt (never noised); a trailing data eos is inserted like any token but counts as the
end, not as a target token (generate drops it; a bound on the sequence with the eos bounds the target, as
in ilm.py). A stream window (no pad) has no end: each of its tokens is a unit.
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
    pad_id: Optional[int] = None  # also the END slot's id (the official code reads the last gap at a pad)
    bos_id: Optional[int] = None  # a leading bos of an unconditional row is context, never noised
    eos_id: Optional[int] = None  # inserted like any token; a trailing one is the end (dropped by generate)
    mask_id: Optional[int] = None  # None: the data has no mask token; we take the id vocab_size
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0  # the longest target; 0 = block_size (unconditional rows, stream windows)
    # network (as mdlm.py, time conditioning always on)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    neighbour_mix: bool = False  # add linear maps of the left and right neighbours' embeddings (mdlm.py says why)
    abs_pos: bool = False  # learned absolute positions added to the embeddings, besides RoPE (mdlm.py)
    # diffusion (linear schedules alpha_t = beta_t = t)
    time_sampling: str = "sqrt"  # 'sqrt': t = 1 - (1-u)^2, weight 1/q(t) (unbiased, finite variance);
    #                              'uniform': t ~ U[0, 1 - t_eps] as the official code
    t_eps: float = 1e-6  # 'uniform' only: the official code's cut before t = 1 (its 1/(1-t) weight stays finite)
    antithetic: bool = True  # stratified times over the batch (the official sample_time)
    length_head: str = "expectation"  # 'expectation': g_hat alone (the paper's Bregman term, all the loss has);
    #                                   'distribution': also a categorical over 0..max_len missing tokens per gap,
    #                                   trained by its CE beside the ELBO, read by the sampler (generate() says how)
    # sampling
    steps: int = 32  # tau-leaping steps from t = 0 to 1 (one network call each, + one for the last fill if
    #                  reveal_after = 0)
    unmask: str = "sample"  # 'sample': each mask revealed with the schedule's probability, its token drawn from
    #                         p(x | x_t) (the paper's tau-leaping); 'confidence': as many, the masks with the
    #                         highest score, their argmax (the official sampler's default; generate() compares)
    score: str = "top_prob"  # 'confidence' only, how masks are ranked: 'top_prob' p1, the likeliest token's
    #                          probability; 'prob_diff' p1 - p2 (the official default confidence_method): a mask
    #                          torn between two tokens waits, however likely the first
    insert: str = "poisson"  # 'poisson': Poisson(g_hat p) new masks per gap (the paper's tau-leaping);
    #                          'binomial': Binomial(round(sum g_hat), p) per row, spread over the gaps in
    #                          proportion to g_hat (the exact law of the total when the total is known)
    reveal_after: float = 0.0  # 0: insert and reveal together (the paper). In (0, 1), insert first (our departure,
    #                            generate() says why): the first ceil(reveal_after * steps) steps only insert, the
    #                            others only reveal, so every reveal sees the finished length


# The allowed values of every Config field; the engine refuses anything else before the first step
# (one line naming the key). (lo, hi): a number in [lo, hi]; a tuple of strings: the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              time_sampling=("sqrt", "uniform"), t_eps=(1e-9, 0.5), length_head=("expectation", "distribution"),
              steps=(1, 100_000), unmask=("sample", "confidence"), score=("top_prob", "prob_diff"),
              insert=("poisson", "binomial"), reveal_after=(0.0, 0.95))


# ----------------------------------------------------------------------------- the alignment posterior
def alignment_marginals(y: torch.Tensor, slots: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Which target position each canvas slot of x_t holds, given x_t and the target: y (B, L) target ids (-1
    past a row's end), slots (B, K) the canvas in order (a token, mask_id, or -1 past the row's slots) ->
    P (B, K, L + 2) float64, P[b, j, i] = P(slot j is target token i | x_t, y), positions 1..L (0 and L + 1 are
    the ends). Every token's (T1, T2) are i.i.d., so every alignment that fits (increasing; a clean slot on an
    equal token, a mask anywhere) is equally likely: forward-backward counts, normalised each step."""
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
    end = (pos == (ylen + 1)[:, None]).double()  # (B, L + 2) each row's END
    b = end
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
        # x (N, C): the batch's real slots, packed; slots (N,): where each sits in the (B, W) batch, flattened
        # (None: the batch has no padding); at (M,): the slots (flat) whose outputs are wanted (None: all N)
        C = x.size(1)
        qkv = self.qkv(x)  # (N, 3C)
        if slots is not None:  # back in rows for attention (slots None: no padding, N = B*W already in rows)
            qkv = qkv.new_zeros(B * W, 3 * C).index_copy(0, slots, qkv)  # (B*W, 3C)
        qkv = qkv.view(B, W, 3, self.n_head, C // self.n_head)  # (B, W, 3, H, hd)
        # q and k rotated in one go, before the transpose to heads (faster than rotating the transposed views)
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
        # x (N, C) -> (N, C); with out = (rows of x, their flat slots in (B*W)): (M, C), the outputs at those slots
        # only (every slot is still a key)
        rows, at = out if out is not None else (None, None)
        mod = self.ada(cond)  # (B, 6C): one modulation per row, then each slot takes its row's
        mod = mod.repeat_interleave(W, 0) if slots is None else mod.index_select(0, slots // W)  # (N, 6C)
        shift1, scale1, _, _, _, _ = mod.chunk(6, dim=-1)
        _, _, gate1, shift2, scale2, gate2 = (mod if rows is None else mod[rows]).chunk(6, dim=-1)
        a = self.attn(self.norm1(x) * (1 + scale1) + shift1, cos, sin, attn_mask, slots, B, W, at)  # (N or M, C)
        x = (x if rows is None else x[rows]) + gate1 * a
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, C): sinusoidal features of alpha_t = t, then an MLP (DiT's timestep embedder; the official
    OWT config embeds the insertion schedule's alpha_t: training.only_embed_insert)."""

    def __init__(self, n_embd: int, n_freq: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(n_freq // 2) / (n_freq // 2)),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(n_freq, n_embd), nn.SiLU(), nn.Linear(n_embd, n_embd), nn.SiLU())

    def forward(self, t):
        angles = t.float()[:, None] * self.freqs[None]  # (B, n_freq/2)
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=-1))


def confidence(logits: torch.Tensor, score: str) -> torch.Tensor:
    """logits (..., V) of masks -> (...,) how sure the network is of each: 'top_prob' p1, the largest probability;
    'prob_diff' p1 - p2 (the official default), small when two tokens compete even if p1 is large."""
    top2 = logits.float().softmax(-1).topk(2, dim=-1).values  # (..., 2) p1 >= p2
    return top2[..., 0] if score == "top_prob" else top2[..., 0] - top2[..., 1]


class Model(nn.Module):
    nll_kind = "bound"  # the loss is an upper bound on the NLL of the target and its end (docstring)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        assert c.time_sampling in ("sqrt", "uniform"), \
            f"time_sampling must be 'sqrt' or 'uniform', not {c.time_sampling!r}"
        assert c.unmask in ("sample", "confidence"), f"unmask must be 'sample' or 'confidence', not {c.unmask!r}"
        assert c.insert in ("poisson", "binomial"), f"insert must be 'poisson' or 'binomial', not {c.insert!r}"
        assert c.length_head in ("expectation", "distribution"), \
            f"length_head must be 'expectation' or 'distribution', not {c.length_head!r}"
        assert c.score in ("top_prob", "prob_diff"), f"score must be 'top_prob' or 'prob_diff', not {c.score!r}"
        assert 0 <= c.reveal_after < 1, f"reveal_after must be in [0, 1), not {c.reveal_after!r}"
        assert 0 < c.t_eps < 1 and c.steps >= 1, "0 < t_eps < 1 and steps >= 1"
        self.rows_data = c.pad_id is not None  # rows end in pad; stream windows (no pad) have no end
        # the data's mask token when it has one (star: <mask>), else a new id past its vocabulary; the END slot
        # is the pad (rows), else one more new id
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
        # the expected number of missing tokens in the gap before each slot (official: ScalarLengthHead)
        self.len_head = nn.Sequential(nn.Linear(c.n_embd, c.n_embd), nn.GELU(), nn.Linear(c.n_embd, 1))
        # length_head='distribution': p(g | x_t, t) over g = 0..max_len per gap (official: len_predict_type=
        # 'distribution', a DDiT final layer to max_length + 1). The ELBO keeps g_hat from the head above.
        self.count_head = (nn.Sequential(nn.Linear(c.n_embd, c.n_embd), nn.GELU(), nn.Linear(c.n_embd, self.max_len + 1))
                           if c.length_head == "distribution" else None)
        cos, sin = rotary_tables(c.block_size + self.max_len + 2, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        # never a target token: the mask (SUBS), pad and the END slot; in rows data also bos, which only ever
        # opens an unconditional row as context (unless it is also the eos, as GPT-2's <|endoftext|>)
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

    def trunk(self, x: torch.Tensor, n_real: torch.Tensor, t: torch.Tensor, start=None) -> torch.Tensor:
        """x (B, W) ids, n_real (B,) slots per row up to its END slot, t (B,) times, start (B,) the first slot
        after the prompt (or None) -> hidden (B, W, C), zero at padding (and before start). Two savings, the same
        numbers: unpadded, all but attention runs on the real slots only, packed as (N, C), so padding costs no
        matmul (rows differ in length: up to 30% of a star_medium batch is padding); and with start, the last
        block runs its attention output and MLP only at the slots that are read (from start on: the prompt's
        outputs are never read, and on star graphs the prompt is most of a row)."""
        B, W = x.shape
        if W > self.cos.size(0):  # a longer row than the tables hold: extend them
            self.cos, self.sin = (a.to(x.device) for a in rotary_tables(W, self.config.n_embd // self.config.n_head))
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2)
        keep = torch.arange(W, device=x.device)[None, :] < n_real[:, None]  # (B, W)
        attn_mask = None if bool(keep.all()) else keep[:, None, None, :]  # (B, 1, 1, W)
        cond = self.time_emb(t)  # (B, C)
        h = self.wte(x)  # (B, W, C)
        if self.mix_left is not None:  # x_i += A e_(i-1) + B e_(i+1), zeros past the ends
            h = h + self.mix_left(F.pad(h[:, :-1], (0, 0, 1, 0))) + self.mix_right(F.pad(h[:, 1:], (0, 0, 0, 1)))
        if self.wpe is not None:
            h = h + self.wpe(torch.arange(W, device=x.device))[None]
        h = self.drop(h)
        # padding slots (computed, never read) round N and M up to a multiple of 64: a run then sees a handful
        # of sizes, not a new one each step, which would fragment the CPU heap (as in models/ilm.py)
        slots, n = None, B * W
        if attn_mask is not None:  # (N,) flat index of each real slot, then the padding ones
            real = keep.reshape(-1)
            n = int(real.sum())
            pad = (~real).nonzero().squeeze(1)[:min(-n % 64, B * W - n)]
            slots = torch.cat([real.nonzero().squeeze(1), pad])
        h = h.reshape(B * W, -1) if slots is None else h.reshape(B * W, -1).index_select(0, slots)  # (N, C)
        out = None  # the last block's: (rows of the packed h, their flat slots in (B*W)), the slots read
        if start is not None:
            read = (keep & (torch.arange(W, device=x.device)[None, :] >= start[:, None])).reshape(-1)  # (B*W,)
            read = read if slots is None else read[slots]  # (N,) False at the padding slots
            rows = read.nonzero().squeeze(1)  # (M,) the read rows of the packed h ...
            n = len(rows)  # ... and more rows, up to a multiple of 64 again
            rows = torch.cat([rows, (~read).nonzero().squeeze(1)[:min(-n % 64, len(read) - n)]])
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
        """h (B, W, C), t (B,) -> g_hat (B, W) >= 0, the expected number of tokens missing just before each
        slot: max_len (1 - alpha_t) softplus(.) (the official head is max_len softplus(.); the docstring says why
        the (1 - alpha_t))."""
        s = self.len_head(h).squeeze(-1).float()  # (B, W)
        return self.max_len * (1 - t.float())[:, None] * F.softplus(s)

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
        is_prefix = j < start[:, None]
        is_target = (j >= start[:, None]) & real  # pad sits only at the end of a row
        L = is_target.sum(1)  # (B,) target lengths
        # times: antithetic u, then t and the row's weight w(t) / q(t), w = alpha'/(1-alpha) = beta'/(1-beta) = 1/(1-t)
        u = torch.rand(B, device=dev, generator=generator)
        if c.antithetic:
            u = (u / B + torch.arange(B, device=dev) / B) % 1
        if t is not None:  # the u that gives these times
            t = t.float().to(dev)
            u = 1 - (1 - t).sqrt() if c.time_sampling == "sqrt" else t / (1 - c.t_eps)
        if c.time_sampling == "sqrt":  # t = 1 - (1-u)^2: q(t) = 1 / (2 sqrt(1-t)), w / q = 2 / sqrt(1-t) = 2 / (1-u)
            t = 1 - (1 - u) ** 2
            weight = 2 / (1 - u)
        else:  # the official code: t ~ U[0, 1 - eps], w / q = 1 / (1-t)
            t = u * (1 - c.t_eps)
            weight = 1 / (1 - t)
        # each token's hitting times: insertion T1 ~ alpha = U[0, 1], unmasking T2 ~ beta truncated to [T1, 1]
        T1 = torch.rand(B, T, device=dev, generator=generator)
        T2 = T1 + (1 - T1) * torch.rand(B, T, device=dev, generator=generator)
        absent = is_target & (t[:, None] < T1)  # (B, T)
        masked = is_target & (T1 <= t[:, None]) & (t[:, None] < T2)
        present = is_prefix | (is_target & ~absent)
        kept = is_target & ~absent  # present target tokens (masks or clean)
        n_kept = kept.sum(1)  # (B,)
        n_real = start + n_kept + 1  # (B,) prefix + canvas + END
        W = int(n_real.max())
        col = present.cumsum(1) - 1  # (B, T) the column of each present token in x
        x = torch.full((B, W + 1), self.end_id, dtype=torch.long, device=dev)  # column W collects the absent
        x.scatter_(1, torch.where(present, col, W), torch.where(masked, self.mask_id, tokens))
        target = torch.full((B, W + 1), -1, dtype=torch.long, device=dev)
        target.scatter_(1, torch.where(masked, col, W), tokens)
        # an absent token is missing from the gap before the next present target token: column start + (present
        # target tokens before it); after the last one that is the END slot
        gap_col = start[:, None] + kept.cumsum(1)  # (B, T)
        gaps = torch.zeros(B, W + 1, device=dev).scatter_add_(1, torch.where(absent, gap_col, W),
                                                             absent.float())
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
        h = self.trunk(x, batch["n_real"], t, batch["start"])  # (B, W, C)
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
        w = batch["weight"][:, None]  # (B, 1)
        unmask_loss = (w * ce).sum() / n_units.clamp(min=1)
        insert_loss = (w * bregman).sum() / n_units.clamp(min=1)
        bound = unmask_loss + insert_loss
        n = n_units.detach().float()
        metrics = {"n_tokens": n, "nll_tokens": n, "unmask_loss": unmask_loss.detach(),
                   "insert_loss": insert_loss.detach(),
                   "masked_ce": (ce.sum() / masked.sum().clamp(min=1)).detach()}  # plain CE per mask
        if not self.training:  # the NLL the engine reports (evaluate() runs in eval mode): the aligned bound per
            # unit, below the loss by a slack the network cannot change (aligned_bound()). Not in training:
            # its forward-backward pass over the canvas would add ~20% to a Shakespeare step
            metrics["nll"] = self.aligned_bound(batch, logits.detach(), g_hat.detach(), is_gap) / n_units.clamp(min=1)
            metrics["alignment_slack"] = bound.detach() - metrics["nll"]
        if self.count_head is None:
            return bound, metrics  # the loss is the bound
        # length_head='distribution': + the CE of each gap's true count under p(g | x_t, t), weighted per gap by
        # the same w/q(t) as the Bregman term (the official code averages the CE over the batch first, then
        # weights that mean by each gap's weight). Not an ELBO term: the loss is no longer the bound, nll still is
        logits = self.count_head(h[is_gap]).float()  # (gaps, max_len + 1)
        count_ce = F.cross_entropy(logits, g[is_gap].long().clamp(max=self.max_len), reduction="none")
        count_loss = (w.expand(B, W)[is_gap] * count_ce).sum() / n_units.clamp(min=1)
        metrics["count_loss"] = count_loss.detach()
        return bound + count_loss, metrics

    @torch.no_grad()
    def aligned_bound(self, batch: dict, logits: torch.Tensor, g_hat: torch.Tensor, is_gap: torch.Tensor):
        """The aligned bound (docstring, 'The NLL reported'): per mask KL(pi, p), pi its token's posterior, per gap
        the Bregman term at the posterior mean count, weighted as the loss. logits (M, V) at the masks, g_hat
        (B, W) -> the sum over the batch."""
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
            ym = y[row]  # (M, L)
            same = (y[:, :, None] == y[:, None, :]) & (y[:, :, None] >= 0)  # (B, L, L)
            pi = torch.bmm(P[:, :, 1:L + 1].float(), same.float()).double()[row, c - start[row]]  # (M, L)
            logp = logits.float().log_softmax(-1).gather(1, ym.clamp(min=0)).double()  # (M, L)
            kl = (Pm * (torch.log(pi.clamp(min=1e-300)) - logp)).where(Pm > 0, 0.0).sum(1)  # (M,)
            total = total + (w[row] * kl).sum()
        return total.float()

    # ------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Tau-leaping from the prompt alone (the paper's sampler; sampling.py in the official code).

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after each row's end.
        An unconditional row of rows data starts from bos (the context it was trained with) when the data has
        one. Times t_i = i / steps. At step i the network reads x_t and t_i, then, to s = t_(i+1):
        - unmask='sample': each mask is revealed with probability (beta_s - beta_t) / (1 - beta_t) = (s - t) / (1 - t),
          which the rate beta'/(1-beta) gives over [t, s], its token drawn from p(x | x_t) (float64). The official
          non-confidence mode draws Poisson(p_v dt/(1-t)) events per token v and reveals a mask only when exactly
          one fires: P = lam e^-lam, lam = dt/(1-t), which under-reveals late (0.30 for 0.50 at t = 1 - 2dt);
        - unmask='confidence': K ~ Binomial(masks, (s - t) / (1 - t)) reveals per row, the K masks with the highest
          score (confidence(): 'top_prob' p1 or 'prob_diff' p1 - p2), as their argmax;
        - each gap gets Poisson(g_hat (alpha_s - alpha_t) / (1 - alpha_t)) new masks, the rate alpha'/(1-alpha)
          g_hat times dt for linear alpha (insert='binomial': the row's total drawn at once, then spread). A row
          whose insertions would take it past max_new_tokens inserts nothing this step (as the official code).
        The last step (s = 1) reveals nothing and inserts all that is still expected: the row's total sum g_hat,
        rounded and trimmed to the limit, spread over the gaps in proportion to g_hat (the cumulative shares
        rounded: each gap gets the floor or the ceiling of its share). Rounding gap by gap would drop expected
        tokens spread thin (0.4 in each of three gaps: none inserted where 1.2 are expected). Then one more
        network call fills every mask left by its argmax (steps + 1 calls). The official sampler inserts nothing
        at its last step, which loses the tokens whose T1 falls there.

        The official code's default is confidence (sampling.py: confidence_based_sampling=True, confidence_method=
        'prob_diff'; generate_samples.py keeps both): each step it reveals the K most confident masks as their
        argmax, K ~ Poisson(masks dt) (no 1/(1-t): fewer reveals than the schedule's mean, more left to the last
        argmax fill), and ranks softmax(p / (1-t)) rather than p. Its LLaDA-scale version (scaling_flexmdm/
        flexmdm_inference.py) draws K ~ Poisson(masks dt / (1-t)), the schedule's mean, ranks p itself and can
        keep to a window of the leftmost masks. Ours is the LLaDA version's mean with a Binomial count (never more
        than the masks), p itself, no window; insertion is the same in all of them. Our default stays 'sample',
        the process the loss bounds.

        Insert first (reveal_after > 0; our departure from the paper). The first n_ins = ceil(reveal_after steps)
        steps only insert, the network reading a clock i / n_ins that runs 0 -> 1 over them (their last step
        inserts the rounded rest, as above); the other steps only reveal, on their own clock 0 -> 1 (the reveal
        probability (s - t) / (1 - t) per step as above), their last step filling every mask left by its argmax
        (steps calls). Why: in the paper's sampler a token is often revealed while tokens around it are still
        missing, on a guess of where it sits, and nothing can move it later. On star_easy (paths of 8 tokens,
        500 test rows) the trained model writes 82% of the paths with confidence and binomial insertion
        together (32 steps; 91% at 128), 98-99% when it inserts first (reveal_after 0.25-0.5, 32 or 128 steps).
        It is not the process the loss bounds, and the network reads canvases that training rarely shows: all
        masks late on the insertion clock, a full canvas early on the reveal clock (in training a present token
        is a mask w.p. -(1-t) log(1-t) / t, and t^L of the rows are full).
        length_head='distribution': g_hat is the mean of each gap's p(g | x_t, t). Inserting first, the row's
        length is chosen once, at t = 0, as the likeliest count of the one gap the empty canvas has (the mode of
        p(g | prompt, t = 0)); every insertion step then inserts from what that length still lacks instead of
        sum g_hat (Binomial(rest, p) with insert='binomial', all of it at the last step), spread over the gaps in
        proportion to g_hat. Why: where the length is uncertain its mean can be a length the data never has (a
        star_medium path has 4, 6, 8 or 10 tokens: half on 6 and half on 8 rounds to 7, always wrong), and when
        inserting first, masks among masks are interchangeable, so the length is all that insertion decides.
        With reveal_after = 0 the tokens revealed on the way inform later insertions, so nothing is fixed.
        Sampler settings do not touch training or the NLL.
        With history=True also returns the canvas after every step ((B, max_new_tokens) tensors: masks as the
        mask id, -1 past the length)."""
        c, dev = self.config, prompt.device
        B = prompt.size(0)
        prompt_lens = prompt_lens.long()
        add_bos = (prompt_lens == 0) & (c.bos_id is not None and self.rows_data)  # (B,)
        start = prompt_lens + add_bos.long()
        P = int(start.max()) if B else 0
        Lc = max_new_tokens  # the most canvas tokens a row may have
        W = P + Lc + 1  # prefix + canvas + END
        k = torch.arange(Lc, device=dev)[None, :]  # (1, Lc) canvas index
        base = torch.full((B, W + 1), self.end_id, dtype=torch.long, device=dev)  # prefix, then END everywhere
        Pp = min(prompt.size(1), P)
        in_prompt = torch.arange(Pp, device=dev)[None] < prompt_lens[:, None]  # (B, Pp)
        base[:, :Pp] = torch.where(in_prompt, prompt[:, :Pp], base[:, :Pp])
        if c.bos_id is not None:
            base[:, 0] = torch.where(add_bos, c.bos_id, base[:, 0])
        seq = torch.full((B, Lc), self.mask_id, dtype=torch.long, device=dev)  # the canvas: its first n are real
        n = torch.zeros(B, dtype=torch.long, device=dev)
        total = None  # length_head='distribution': (B,) the length chosen at t = 0
        steps = []

        def run(t: float):  # -> hidden states at the canvas slots (B, Lc, C), g_hat at gaps 0..n (B, Lc + 1)
            x = base.clone()
            x.scatter_(1, torch.where(k < n[:, None], start[:, None] + k, W), seq)  # past n: column W
            x = x[:, :W]  # the END slot right after the canvas is already there (base is END past the prefix)
            tt = torch.full((B,), t, device=dev)
            h = self.trunk(x, start + n + 1, tt, start)  # (B, W, C)
            cols = start[:, None] + torch.arange(Lc + 1, device=dev)[None, :]  # (B, Lc + 1) canvas + END
            h = h.gather(1, cols[:, :, None].expand(-1, -1, h.size(-1)))
            nonlocal total
            if self.count_head is None:
                g_hat = self.expected_gaps(h, tt)  # (B, Lc + 1)
            else:  # length_head='distribution': p(g | x_t, t) per gap; its mean, and the first call's mode
                p_count = self.count_head(h).float().softmax(-1)  # (B, Lc + 1, max_len + 1)
                g_hat = (p_count * torch.arange(p_count.size(-1), device=dev)).sum(-1)
                if total is None and c.reveal_after > 0:  # insert first, t = 0, the canvas empty: gap 0 is the
                    total = p_count[:, 0].argmax(-1)  # only one, its count the whole length (B,)
            g_hat = g_hat.masked_fill(torch.arange(Lc + 1, device=dev)[None] > n[:, None], 0.0)
            return h[:, :Lc], g_hat

        def insert(counts: torch.Tensor):  # counts (B, Lc + 1) new masks per gap -> the new seq, n
            nonlocal seq, n
            before = counts.cumsum(1)[:, :Lc]  # masks inserted at or before gap k: token k moves right by that
            # new masks everywhere, then the old tokens at their new columns (counts keep n + sum <= Lc)
            out = torch.full((B, Lc + 1), self.mask_id, dtype=torch.long, device=dev)
            out.scatter_(1, torch.where(k < n[:, None], (k + before).clamp(max=Lc), Lc), seq)
            seq, n = out[:, :Lc], n + counts.sum(1)

        def draw(lg: torch.Tensor) -> torch.Tensor:
            # categorical draw from softmax(lg) in float64: argmax p / E with E ~ Exp(1) (the Gumbel-max trick)
            p = lg.double().softmax(-1)  # (m, V)
            e = -torch.rand(p.shape, dtype=torch.float64, device=dev, generator=generator).log()
            return (p / e).argmax(-1)

        def shown() -> torch.Tensor:
            return torch.where(k < n[:, None], seq, -1)

        # insert first: n_ins insertion-only steps, then reveal-only ones; 0: both moves at every step
        n_ins = min(c.steps, math.ceil(c.reveal_after * c.steps)) if c.reveal_after > 0 else 0
        for i in range(c.steps):
            inserting, revealing = n_ins == 0 or i < n_ins, n_ins == 0 or i >= n_ins
            if n_ins == 0 or inserting:  # step j of m on this phase's own clock from 0 to 1
                j, m = i, (c.steps if n_ins == 0 else n_ins)
            else:
                j, m = i - n_ins, c.steps - n_ins
            t, s, last = j / m, (j + 1) / m, j == m - 1
            h, g_hat = run(t)
            is_mask = (k < n[:, None]) & (seq == self.mask_id)  # (B, Lc)
            if revealing and not last and is_mask.any():  # unmask: each mask w.p. (s - t) / (1 - t)
                flip = is_mask & (torch.rand(B, Lc, device=dev, generator=generator) < (s - t) / (1 - t))
                if c.unmask == "sample":
                    if flip.any():
                        seq[flip] = draw(self.token_logits(h[flip]))
                else:  # confidence: the same number per row, the masks with the highest score, their argmax
                    logits = self.token_logits(h)  # (B, Lc, V)
                    conf = confidence(logits, c.score).masked_fill(~is_mask, -1.0)  # (B, Lc)
                    rank = conf.argsort(1, descending=True).argsort(1)  # (B, Lc) 0 = the most confident
                    reveal = is_mask & (rank < flip.sum(1, keepdim=True))
                    seq[reveal] = logits[reveal].argmax(-1)
            elif revealing and not inserting and is_mask.any():  # insert first's last step: the fill, by argmax
                seq[is_mask] = self.token_logits(h[is_mask]).argmax(-1)
            if inserting:
                room = Lc - n  # (B,)
                # the tokens still expected in the row: sum g_hat, or what the length chosen at t = 0 still lacks
                rest = g_hat.double().sum(1) if total is None else (total - n).clamp(min=0).double()  # (B,)
                if last:  # t -> 1: all still expected, rounded (<= room), spread in proportion to g_hat
                    g = g_hat.double()  # (B, Lc + 1)
                    if total is not None:  # a chosen length is kept even where g_hat is ~0 everywhere
                        g = g + 1e-9 * (torch.arange(Lc + 1, device=dev)[None] <= n[:, None])
                    due = rest[:, None].round().minimum(room[:, None].double())  # (B, 1)
                    share = g * due / g.sum(1, keepdim=True).clamp(min=1e-12)  # (B, Lc + 1), sums to due
                    cum = share.cumsum(1).round().long()  # ends at total: each gap the floor or ceiling of its share
                    counts = torch.diff(cum, dim=1, prepend=torch.zeros_like(cum[:, :1]))
                else:
                    p = (s - t) / (1 - t)  # P(a missing token comes in [t, s]) = (alpha_s - alpha_t) / (1 - alpha_t)
                    if c.insert == "binomial":  # the row's total ~ Binomial(R, p), R = the expected total; gaps ~ g_hat
                        now = torch.binomial(rest.round(), torch.full(
                            (B,), p, dtype=torch.float64, device=dev), generator=generator).long()  # (B,)
                        counts = torch.zeros_like(g_hat, dtype=torch.long)
                        if int(now.max()) > 0:
                            weights = g_hat.double() + 1e-12 * (g_hat.sum(1, keepdim=True) == 0)  # all-zero: uniform
                            gap = torch.multinomial(weights, int(now.max()),
                                                    replacement=True, generator=generator)  # (B, max now)
                            counts.scatter_add_(1, gap, (torch.arange(gap.size(1), device=dev)[None]
                                                         < now[:, None]).long())
                    else:  # Poisson(g_hat p) per gap
                        counts = torch.poisson(g_hat.double() * p, generator=generator).long()
                    cap = room if total is None else torch.minimum(room, (total - n).clamp(min=0))  # (B,)
                    counts = counts * (counts.sum(1) <= cap).long()[:, None]  # a row past the limit (or length) waits
                insert(counts)
            if history:
                steps.append(shown())
        is_mask = (k < n[:, None]) & (seq == self.mask_id)
        if is_mask.any():  # the last fill: every mask left, by its argmax
            h, _ = run(1.0)
            seq[is_mask] = self.token_logits(h[is_mask]).argmax(-1)
            if history:
                steps.append(shown())
        out = shown()
        if c.eos_id is not None and self.rows_data:  # a trailing data eos is the end, not a token
            last_tok = out.gather(1, (n - 1).clamp(min=0)[:, None]).squeeze(1)
            drop = (n > 0) & (last_tok == c.eos_id)
            out = torch.where((k == (n - 1)[:, None]) & drop[:, None], -1, out)
        return (out, steps) if history else out
