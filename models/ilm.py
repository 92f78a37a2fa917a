"""
ILM: the insertion language model, which writes a sequence by inserting one token at a time anywhere in it.

Lineage: Patel et al. 2025, "Insertion Language Models: Sequence Generation with Arbitrary-Position
Insertions" (the ILM paper; ILM is also the insertion model of the XLM paper), on the bidirectional rotary
transformer of arlm.py with the causal mask taken out. Where ARLM can only append at the end, ILM picks a
(gap, token) pair jointly: on star graphs it can write the goal's end of the path first and fill in the
rest, which is why it solves them.

One training example (models/arlm.py is the reference for the contract; this file changes what differs):

    row        p1 p2 p3 | t1 t2 t3 t4 t5           prompt never dropped, target t1..tL (L = 5)
    drop       n ~ U{0..L} target tokens at uniformly random positions, say t2 t4 t5 (n = 3)
    x          CLS p1 p2 p3 SEP t1 t3 pad ...      kept tokens in order, left-packed, padded
    gaps       "after slot s" for s = SEP, t1, t3  (never CLS, never inside the prompt)
    target     q(gap, token) = count / n: (after t1, t2) 1/3, (after t3, t4) 1/3, (after t3, t5) 1/3
    stop       label 1 when n == 0 (nothing missing), else 0

The network gives token logits at every slot (slot s's logits = inserting that token into the gap after
s) and a stop logit read at CLS. Loss per example = CE of one softmax over all legal (gap, token) pairs
against q, plus the stop head's BCE; the batch loss is the mean over examples (as XLM does).
Sampling: start from CLS prompt SEP, insert the chosen (gap, token), repeat until the stop head says stop
(p >= stop_threshold) or max_new_tokens were inserted. Finished rows leave the batch.

Where the choices come from (xlm-models 0.3.1, ilm/): XLM's seq2seq collator lays out `CLS prompt BOS kept`
with the dropped tokens counted into the gap after the last kept token before them (ilm_drop_fn), the
stop head is a small MLP on the CLS position (RotaryTransformerILMModelWithStoppingClassification), the
loss is masked CE over the flattened seq x vocab plus a binary stop CE, averaged per example
(ILMLossWithMaskedCE), and star graphs are sampled with a greedy token after a gap drawn from the top-2
gaps (configs/experiment/star_easy_ilm.yaml). Differences here: the SEP slot is the data's bos (or our
own id); prompt slots are excluded from the softmax by construction, not left for the model to learn to
avoid; the stop head is one sigmoid logit (the same as XLM's two-class softmax); the default sampler is
fully greedy (the most likely gap, then its most likely token), which on a half-trained star_easy model
scored 47% sequence accuracy where XLM's top-2 gap sampling scored 37% and a joint argmax 44%.

The NLL unit (models/README.md): the NLL of a row's target tokens plus one end-of-sequence event, divided by
(target tokens + 1). ILM reports an upper bound on it (forward(), below): the end is the stop decision;
a trailing data eos is inserted like any token (the data's rows end in it) but counts as the end, not as
a target token; a leading bos is the SEP slot. A stream window has no end: each inserted token is a unit.
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
    bos_id: Optional[int] = None  # used as the SEP slot (gap 0 of the target) when the data has one
    eos_id: Optional[int] = None  # an ordinary token here: ILM stops with its stop head, not with eos
    mask_id: Optional[int] = None  # never inserted
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0
    # network
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64  # 4L/64: the CPU star_easy recipe (configs/ilm_star_easy.py), the default run's network
    dropout: float = 0.0
    # mlm.py's two additions for small bidirectional models (off by default; probed on star_hard:
    # bench/results/ilm_star_hard_probes.json): each slot also sees its left and right neighbours'
    # embeddings (on star graphs: an edge's partner node, the key of every lookup) and a learned
    # absolute position besides RoPE
    neighbour_mix: bool = False  # add linear maps of the left and right real slots' embeddings (zero past the ends)
    abs_pos: bool = False  # learned absolute positions of the slots (CLS at 0), besides RoPE
    # sampling
    stop_threshold: float = 0.9  # stop a sequence once the stop head's p(stop) reaches this (the paper's 0.9)
    two_stage: bool = True  # True: gap first (log-sum-exp over tokens), then the token; False: one joint draw
    # temperature 0 is the argmax unless top_k (top_p) narrows the choice: then a draw at temperature 1 among
    # the kept ones (as XLM's sample_top_k: gap_top_k=2 = one of the two likeliest gaps, by their probability)
    gap_temperature: float = 0.0  # two-stage gap choice: 0 = the most likely gap (but see gap_top_k)
    gap_top_k: int = 0  # two-stage gap choice: sample among the k most likely gaps (XLM's star setting: 2)
    temperature: float = 0.0  # the token (or the joint pair): 0 = greedy (argmax; but see top_k, top_p)
    top_k: int = 0  # keep the k most likely tokens (pairs); 0 = all
    top_p: float = 1.0  # nucleus: keep the smallest set with this much probability


# The allowed values of every Config field but the bools and the data's (the engine refuses anything else
# before the first step, in one line naming the key): (lo, hi) a number in [lo, hi], a tuple the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              stop_threshold=(0.01, 1.0), gap_temperature=(0.0, 100.0), gap_top_k=(0, 1_000_000),
              temperature=(0.0, 100.0), top_k=(0, 1_000_000), top_p=(0.001, 1.0))


# ----------------------------------------------------------------------------- the network (as arlm.py)
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

    def forward(self, x, cos, sin, attn_mask, slots, out=None):
        # x (N, C): the batch's real slots, packed; slots (N,): where each sits in the (B, W) canvas, flattened;
        # out (M,): the slots whose outputs are wanted (None: all N)
        (N, C), B, W = x.shape, attn_mask.size(0), attn_mask.size(-1)
        qkv = x.new_zeros(B * W, 3 * C).index_copy(0, slots, self.qkv(x))  # (B*W, 3C): back on the canvas
        qkv = qkv.view(B, W, 3, self.n_head, C // self.n_head)  # (B, W, 3, H, hd)
        # q and k rotated in one go, before the transpose to heads (faster than rotating the transposed views)
        q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # 2 x (B, H, W, hd)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, W, hd)
        # bidirectional: every slot sees every real slot; padding is masked out as a key
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, W, hd)
        return self.proj(y.transpose(1, 2).reshape(B * W, C).index_select(0, slots if out is None else slots[out]))


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.n_embd, bias=False)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * c.n_embd, c.n_embd, bias=False), nn.Dropout(c.dropout))

    def forward(self, x, cos, sin, attn_mask, slots, out=None):
        # pre-norm residual blocks, x (N, C) -> (N, C), or (M, C): only the out slots (all slots are still keys)
        x = (x if out is None else x[out]) + self.attn(self.norm1(x), cos, sin, attn_mask, slots, out)
        return x + self.mlp(self.norm2(x))


def pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator=None) -> torch.Tensor:
    """logits (B, K) -> indices (B,): greedy, or temperature / top-k / top-p sampling (in float64).
    Temperature 0 is the argmax unless top_k or top_p narrows the choice: then a draw at temperature 1
    among the kept ones (top_k=2 = one of the two best, in proportion to their probabilities, as XLM)."""
    if temperature <= 0 and top_k <= 0 and top_p >= 1.0:
        return logits.argmax(-1)
    logits = logits.double() / (temperature if temperature > 0 else 1.0)
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # drop once the mass before it reaches top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


class Model(nn.Module):
    nll_kind = "bound"  # the NLL metric is an upper bound on the NLL (models/README.md)

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        V = c.vocab_size
        # two slots of our own past the data's vocabulary: CLS (the stop head reads it) and, when the data
        # has no bos, SEP (the slot before the target, whose gap is the target's first)
        self.cls_id = V
        self.sep_id = c.bos_id if c.bos_id is not None else V + 1
        self.fill_id = c.pad_id if c.pad_id is not None else V  # unused slots: never attended to, any id works
        self.n_vocab = V + 2
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        self.mix_right = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        n_pos = 2 * c.block_size + c.max_target_len + 2  # room to generate, as the rotary tables below
        self.wpe = nn.Embedding(n_pos, c.n_embd) if c.abs_pos else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        # slot s, token v: insert v after s. Not tied to wte, as in XLM: a tied head scores h_s . e_v with
        # h_s close to e_(x_s) at first, so "copy the slot's own token" starts out as the likeliest insertion
        self.head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.stop_head = nn.Sequential(nn.Linear(c.n_embd, c.n_embd), nn.Tanh(), nn.Linear(c.n_embd, 1))  # XLM: MLP on CLS
        # never inserted: padding, the data's mask, our own CLS/SEP ids
        banned = torch.zeros(self.n_vocab, dtype=torch.bool)
        banned[[i for i in (c.pad_id, c.mask_id, V, V + 1) if i is not None]] = True
        self.register_buffer("banned", banned, persistent=False)
        cos, sin = rotary_tables(n_pos, c.n_embd // c.n_head)
        self.register_buffer("cos", cos, persistent=False)  # not saved: recomputed from the config
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 n_layer)
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def trunk(self, x: torch.Tensor, n_real: torch.Tensor, first_gap: torch.Tensor) -> torch.Tensor:
        """x (B, W) slot ids, n_real (B,) real slots per row (the rest is padding), first_gap (B,) the SEP slot
        -> hidden states (B, W, C) at CLS and the gaps (SEP and after), zero elsewhere. Two savings, the same
        numbers: (1) unpadded, all but attention runs on the N real slots only, packed as (N, C), so padding
        costs no matmul (rows differ in length, as ILM drops a random number of tokens from each: 11% of a
        star_easy batch's slots, 29% of star_medium's); (2) the last block runs its attention output and MLP
        only at the slots that are read (CLS for the stop head, the gaps for insertions), not at the prompt:
        on star graphs the prompt is most of a row."""
        B, W = x.shape
        cos, sin = self.cos[None, :W, None, None], self.sin[None, :W, None, None]  # (1, W, 1, 1, hd/2): slot s at s
        s = torch.arange(W, device=x.device)[None, :]
        key_ok = s < n_real[:, None]  # (B, W)
        attn_mask = key_ok[:, None, None, :]  # (B, 1, 1, W): no causal mask, padding hidden as a key
        # (N,) flat index of each real slot in (B*W), then padding slots up to a multiple of 64 (computed, never
        # read): a run sees a handful of sizes, not a new one each step, which would fragment the CPU heap
        # (memory grew 2.3x in 240 steps without the rounding)
        real = key_ok.reshape(-1)
        n = int(real.sum())
        slots = torch.cat([real.nonzero().squeeze(1), (~real).nonzero().squeeze(1)[:min(-n % 64, B * W - n)]])
        read = ((s == 0) | (s >= first_gap[:, None])).reshape(-1)[slots] & real[slots]  # (N,) CLS and the gaps
        out = read.nonzero().squeeze(1)  # (M,) their rows in the packed (N, C) ...
        m = len(out)  # ... and more rows, up to a multiple of 64 again
        out = torch.cat([out, (~read).nonzero().squeeze(1)[:min(-m % 64, len(slots) - m)]])
        if self.mix_left is None and self.wpe is None:
            h = self.wte(x.reshape(-1).index_select(0, slots))  # (N, C)
        else:  # on the canvas first, where neighbours are adjacent, then packed
            # (B, W, C) zero at padding: a row's last slot has no right neighbour however wide the batch is
            # (training and sampling pad rows differently; tests/test_ilm.py checks that they agree)
            h = e = self.wte(x) * key_ok[:, :, None]
            if self.mix_left is not None:  # h_s += A e_(s-1) + B e_(s+1)
                h = h + self.mix_left(F.pad(e[:, :-1], (0, 0, 1, 0))) + self.mix_right(F.pad(e[:, 1:], (0, 0, 0, 1)))
            if self.wpe is not None:
                h = h + self.wpe(s[0])[None]
            h = h.reshape(B * W, -1).index_select(0, slots)  # (N, C)
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, cos, sin, attn_mask, slots, out if i == len(self.blocks) - 1 else None)
        h = self.norm(h[:m])  # (M, C) the read slots
        return h.new_zeros(B * W, h.size(1)).index_copy(0, slots[out[:m]], h).view(B, W, -1)  # (B, W, C)

    def insertion_logits(self, h: torch.Tensor, first_gap: torch.Tensor, n_real: torch.Tensor) -> torch.Tensor:
        """h (B, W, C) -> logits (B, W, V') of inserting token v after slot s, -inf where illegal: the gaps
        are SEP and every target slot after it (first_gap <= s < n_real); banned tokens are never inserted."""
        logits = self.head(h).float()  # (B, W, V')
        s = torch.arange(h.size(1), device=h.device)[None, :]
        legal = (s >= first_gap[:, None]) & (s < n_real[:, None])  # (B, W)
        return logits.masked_fill(~legal[:, :, None] | self.banned, float("-inf"))

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None) -> dict:
        """Clean rows (B, T) -> ILM inputs and (gap, token) targets, all in tensor ops on the device.

        The target is kept sparse (XLM uses a sparse COO tensor too): for every original position j, gap[b, j]
        is the slot of x whose gap the dropped token tokens[b, j] falls into (-1 when kept) and weight[b, j]
        = 1/n. Summing weight over equal (gap, token) pairs gives the joint q(gap, token) = count / n; a
        dense (B, W, V) tensor would not fit for GPT-2 vocabularies. An unconditional row (prompt_len 0)
        is all target, except a leading bos, which simply is the SEP slot (as ARLM takes it as context).
        n_units (B,) are the row's NLL units: its L target tokens + 1 for the end (the stop), where a trailing
        data eos is the end, not a target token; stream windows (no pad) have no end, L units."""
        B, T = tokens.shape
        dev = tokens.device
        c = self.config
        j = torch.arange(T, device=dev)[None, :]  # (1, T) original positions
        real = tokens != c.pad_id if c.pad_id is not None else torch.ones_like(tokens, dtype=torch.bool)
        lead_bos = (prompt_lens == 0) & (tokens[:, 0] == self.sep_id) if c.bos_id is not None else prompt_lens < 0
        start = prompt_lens + lead_bos.long()  # (B,) index of the first target token
        is_prompt = j < prompt_lens[:, None]
        is_target = (j >= start[:, None]) & real  # pad sits only at the end of a row
        L = is_target.sum(1)  # (B,) target lengths
        # n ~ U{0..L}, then a uniformly random n-subset: the n target positions with the smallest scores
        n = (torch.rand(B, generator=generator, device=dev) * (L + 1)).long().clamp(max=L)  # (B,)
        score = torch.rand(B, T, generator=generator, device=dev).masked_fill(~is_target, 2.0)
        rank = score.argsort(1).argsort(1)  # (B, T) rank of each position's score in its row
        dropped = rank < n[:, None]  # non-targets score 2 and rank after every target
        keep = is_prompt | (is_target & ~dropped)
        # slot of each kept token in x = kept tokens up to and including it, +1 after the prompt (SEP);
        # for a dropped token the same count points at the last kept slot before it: its gap
        slot = keep.cumsum(1) + (j >= start[:, None]).long()  # (B, T); CLS is slot 0
        n_real = prompt_lens + 2 + L - n  # (B,) CLS + prompt + SEP + kept target
        W = int(n_real.max())
        x = torch.full((B, W + 1), self.fill_id, dtype=torch.long, device=dev)  # column W collects the not kept
        x.scatter_(1, torch.where(keep, slot, W), tokens)
        x = x[:, :W]
        x[:, 0] = self.cls_id
        x.scatter_(1, (prompt_lens + 1)[:, None], self.sep_id)
        if c.pad_id is not None:  # rows: + 1 for the end, unless a trailing data eos already is it
            last = tokens.gather(1, (start + L - 1).clamp(min=0, max=T - 1)[:, None]).squeeze(1)
            n_units = L + 1 - ((last == c.eos_id) & (L > 0)).long()  # (B,)
        else:
            n_units = L
        return {"x": x, "n_real": n_real, "first_gap": prompt_lens + 1,  # (B, W), (B,), (B,) slot of SEP
                "gap": torch.where(dropped, slot, -1), "tok": tokens,  # (B, T), (B, T): the sparse target
                "weight": dropped.float() / n.clamp(min=1)[:, None],  # (B, T) 1/n per dropped token
                "stop": (n == 0).float(), "n_target": L, "n_units": n_units}  # (B,), (B,), (B,)

    def forward(self, batch: dict):
        x, gap, tok, weight = batch["x"], batch["gap"], batch["tok"], batch["weight"]
        B, W = x.shape
        h = self.trunk(x, batch["n_real"], batch["first_gap"])  # (B, W, C)
        logits = self.insertion_logits(h, batch["first_gap"], batch["n_real"])  # (B, W, V')
        V = logits.size(-1)
        # one softmax over all legal (gap, token) pairs: log p(s, v) = logit - logZ
        log_z = logits.view(B, -1).logsumexp(-1)  # (B,)
        chosen = logits.view(B, -1).gather(1, gap.clamp(min=0) * V + tok)  # (B, T) logits of the dropped pairs
        chosen = torch.where(weight > 0, chosen, 0.0)  # kept positions point at CLS (-inf): zero them first
        # CE(q, p) = -sum_{s,v} q(s,v) log p(s,v) = -(1/n) sum over dropped tokens of log p(gap, token)
        ce = -(weight * (chosen - log_z[:, None])).sum(1)  # (B,); 0 when nothing was dropped
        stop_logit = self.stop_head(h[:, 0]).squeeze(-1).float()  # (B,) read at CLS
        stop_loss = F.binary_cross_entropy_with_logits(stop_logit, batch["stop"], reduction="none")  # (B,)
        example_loss = ce + stop_loss  # (B,)
        # Divided by the fixed count B (per example, then the mean: XLM's normalisation).
        loss = example_loss.mean()
        # NLL bound. Generating x (L target tokens) is a path: L insertions, each a "continue" and a (gap,
        # token), then "stop". The L! orders in which x's positions can be inserted are L! different paths
        # (a path records where each token went, so it gives back the order) and all of them end in x, so
        #   p(x) = sum_order p(path) = L! E_order[p(path)],  order ~ uniform over the L! orders
        #   -log p(x) <= E_order[-log p(path)] - log L!          (Jensen: -log E[.] <= E[-log .])
        # In a uniform order the state after k insertions is a uniform k-subset of the positions and the
        # next insertion a uniform one of the n = L-k missing: exactly collate's draw, and its example_loss is
        # that step's -log p(continue) - E[log p(gap, token)] (or -log p(stop) at n = 0). Summed over the L+1
        # values of n ~ U{0..L}: E_order[-log p(path)] = (L+1) E_n[example_loss]. So per row, unbiased:
        L = batch["n_target"].float()  # (B,)
        bound = (L + 1) * example_loss - torch.lgamma(L + 1)  # (B,) -log L! = -lgamma(L+1)
        nll_bound = bound.sum() / batch["n_units"].sum().clamp(min=1)  # per unit: target tokens + the end
        return loss, {"ce": ce.mean().detach(), "stop_loss": stop_loss.mean().detach(),
                      "nll": nll_bound.detach(), "nll_tokens": batch["n_units"].sum().detach().float(),
                      "n_tokens": torch.tensor(float(B), device=x.device)}

    # ------------------------------------------------------------------------- sampling
    def choose(self, logits: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, W, V') with -inf where illegal -> gap slot (B,) and token (B,) to insert after it."""
        c = self.config
        B, W, V = logits.shape
        if not c.two_stage:  # one draw from p(s, v) over the flattened gaps x tokens
            flat = pick(logits.view(B, -1), c.temperature, c.top_k, c.top_p, generator)
            return flat // V, flat % V
        # two stages (XLM's second_sampling_method): the gap from its marginal p(s) = sum_v p(s, v) ...
        gap = pick(logits.logsumexp(-1), c.gap_temperature, c.gap_top_k, 1.0, generator)  # (B,)
        # ... then the token from p(v | s)
        tok = pick(logits[torch.arange(B, device=logits.device), gap], c.temperature, c.top_k, c.top_p, generator)
        return gap, tok

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Insertion sampling (ILM paper, Algorithm "generate"): one (gap, token) insertion per step.

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), the target only, -1 after
        each sequence's end. A row starts as CLS prompt SEP (just CLS SEP without a prompt); at each step
        it stops when p(stop) >= stop_threshold, otherwise gets one insertion; after max_new_tokens
        insertions it stops regardless. Finished rows leave the batch, so they cost no more compute.
        Every active row has inserted the same number t of tokens, so its target is the t slots after SEP.
        With history=True also returns the target after every step (one (B, t) tensor per step)."""
        c = self.config
        B, P = prompt.shape
        dev = prompt.device
        W = P + 2 + max_new_tokens
        if W > self.cos.size(0):
            raise ValueError(f"prompt {P} + {max_new_tokens} new tokens exceed the {self.cos.size(0) - 2} positions "
                             f"this model has (set by block_size={c.block_size})")
        x = torch.full((B, W), self.fill_id, dtype=torch.long, device=dev)  # (B, W) slots
        x[:, 0] = self.cls_id
        in_prompt = torch.arange(P, device=dev)[None, :] < prompt_lens[:, None]
        x[:, 1:P + 1] = torch.where(in_prompt, prompt, self.fill_id)
        x.scatter_(1, (prompt_lens + 1)[:, None], self.sep_id)
        first = prompt_lens + 1  # (B,) slot of SEP = the first gap
        rows = torch.arange(B, device=dev)  # original row of each active sequence
        out = torch.full((B, max_new_tokens), -1, dtype=torch.long, device=dev)
        steps = []
        top = int(first.max())  # the widest active row's SEP slot: active width = top + 1 + t

        def target(x, first, t):  # (b, W), (b,) -> the t inserted tokens after SEP, (b, t)
            return x.gather(1, first[:, None] + 1 + torch.arange(t, device=dev)[None, :])

        for t in range(max_new_tokens + 1):  # t = tokens inserted so far, the same in every active row
            n_real = first + 1 + t  # (b,)
            if t < max_new_tokens:
                h = self.trunk(x[:, :top + 1 + t], n_real, first)  # (b, w, C)
                done = torch.sigmoid(self.stop_head(h[:, 0]).squeeze(-1).float()) >= c.stop_threshold  # (b,)
            else:
                done = torch.ones_like(rows, dtype=torch.bool)  # the length limit
            if done.any():  # write finished rows out, drop them from the batch
                out[rows[done], :t] = target(x[done], first[done], t)
                keep = ~done
                x, first, rows, n_real = x[keep], first[keep], rows[keep], n_real[keep]
                if len(rows) == 0:
                    break
                h = h[keep]
                top = int(first.max())
                h = h[:, :top + 1 + t]  # the narrower batch needs fewer slots
            gap, tok = self.choose(self.insertion_logits(h, first, n_real), generator)  # (b,), (b,)
            # insert tok after slot gap: slots after it shift right by one (a vectorised gather + scatter)
            s = torch.arange(W, device=dev)[None, :]
            x = x.gather(1, s - (s > gap[:, None] + 1).long())
            x.scatter_(1, (gap + 1)[:, None], tok[:, None])
            if history:
                out[rows, :t + 1] = target(x, first, t + 1)
                steps.append(out[:, :t + 1].clone())
        return (out, steps) if history else out
