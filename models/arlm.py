"""
ARLM: the autoregressive baseline, a causal transformer that predicts the next token.

Lineage: GPT-2 (Radford et al. 2019) as distilled in nanoGPT, with rotary positions (Su et al. 2021,
RoFormer) instead of learned ones and PyTorch's fused attention (SDPA). In the XLM paper (Patel et al. 2025)
it is the baseline that insertion and masked models are compared with; on star graphs it has to pick the
branch at the junction before it has written where the path leads, so it gets the branch right only by
tracing back from the goal inside one forward pass: one lookup when the goal is two edges past the junction
(half of star_medium), four on star_easy, where it stays at a third (bench/results/star_medium_probes.json).

This file is also the reference for the model contract (models/README.md): Config, Model(config),
model(batch) -> (loss, metrics), Model.nll_kind, Model.collate(tokens, prompt_lens, generator) -> batch and
Model.generate(prompt, prompt_lens, max_new_tokens, generator) -> tokens. Copy it to start a new model.

The NLL unit (models/README.md): the NLL of a row's target tokens plus one end-of-sequence event, divided by
(target tokens + 1). Here that is exact: the loss sums -log p over the target tokens and the eos that ends
them (the data's own eos, or the one collate appends) and divides by their count. A leading bos is context,
not a target; a stream window has no end, and each token after its first is one unit.
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
    mask_id: Optional[int] = None  # unused by ARLM
    block_size: int = 256  # the longest row (or stream window) the data holds
    max_prompt_len: int = 0
    max_target_len: int = 0
    # network
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    # Off by default; configs/arlm_star_medium.py turns both on, as mdlm.py's star configs do. A lookup on star
    # graphs reads an edge's two nodes together; a causal model can learn a previous-token head for that, but
    # at 4L/64 ARLM solved only ~46% of the star_medium rows whose branch is one lookup back from the goal.
    neighbour_mix: bool = False  # add a linear map of the previous token's embedding (causal: never the next)
    abs_pos: bool = False  # learned absolute positions added to the embeddings (GPT-2), besides RoPE
    # sampling
    temperature: float = 0.0  # 0 = greedy (argmax), unless top_k or top_p is set: then a draw at temperature 1
    top_k: int = 0  # keep the k most likely tokens; 0 = all
    top_p: float = 1.0  # nucleus: keep the smallest set with this much probability
    kv_cache: bool = True  # False recomputes the whole prefix each step (the slow reference)


# The allowed values of every Config field but the bools and the data's (the engine refuses anything else
# before the first step, in one line naming the key): (lo, hi) a number in [lo, hi], a tuple the choices.
LIMITS = dict(n_layer=(1, 64), n_head=(1, 64), n_embd=(8, 8192), dropout=(0.0, 0.9),
              temperature=(0.0, 100.0), top_k=(0, 1_000_000), top_p=(0.001, 1.0))


# ----------------------------------------------------------------------------- the network
def rotary_tables(n_pos: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    # RoPE: pair i of a head is rotated by angle pos * base^(-2i/d), so q.k depends on the offset only
    inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
    angles = torch.outer(torch.arange(n_pos).float(), inv_freq)  # (n_pos, hd/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, T, 2, H, hd): q and k together; cos/sin (B or 1, T, 1, 1, hd/2): rotate each (x1, x2) pair
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.n_head = c.n_head
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)
        self.proj = nn.Linear(c.n_embd, c.n_embd, bias=False)
        self.dropout = c.dropout

    def forward(self, x, cos, sin, attn_mask=None, cache=None, at=None):
        # x (B, T, C); at (M,): the positions (flat in B*T) whose outputs are wanted (None: all)
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head)  # (B, T, 3, H, hd)
        # q and k rotated in one go, before the transpose to heads (faster than rotating the transposed views)
        q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # 2 x (B, H, T, hd)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, hd)
        if cache is not None:  # generation: append this step's keys/values to the preallocated cache
            start = cache["len"]
            if "k" not in cache:  # allocated on first use, in the dtype autocast gives the keys
                cache["k"] = k.new_empty(B, self.n_head, cache["size"], k.size(-1))
                cache["v"] = v.new_empty(B, self.n_head, cache["size"], v.size(-1))
            cache["k"][:, :, start:start + T] = k
            cache["v"][:, :, start:start + T] = v
            k, v = cache["k"][:, :, :start + T], cache["v"][:, :, :start + T]
        if attn_mask is None:  # training: plain causal attention, the fast kernel
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:  # generation: causal and blind to the left padding of short prompts
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.proj(y if at is None else y.view(B * T, C).index_select(0, at))  # (B, T, C) or (M, C)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.n_embd, bias=False)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * c.n_embd, c.n_embd, bias=False), nn.Dropout(c.dropout))

    def forward(self, x, cos, sin, attn_mask=None, cache=None, at=None):
        # pre-norm residual blocks; with at (M,): only the outputs at those positions, (M, C) (all are still keys)
        res = x if at is None else x.view(-1, x.size(-1)).index_select(0, at)
        x = res + self.attn(self.norm1(x), cos, sin, attn_mask, cache, at)
        return x + self.mlp(self.norm2(x))


class Model(nn.Module):
    nll_kind = "exact"  # the loss is the NLL itself (models/README.md: "exact", "bound" or "none")

    def __init__(self, config: Config):
        super().__init__()
        c = self.config = config
        assert c.vocab_size > 0 and c.n_embd % c.n_head == 0, "vocab_size comes from the data; n_embd % n_head == 0"
        # our own ids when the data has none: pad past the vocabulary; start/stop with eos (GPT-2 style)
        self.pad_id = c.pad_id if c.pad_id is not None else c.vocab_size
        self.eos_id = c.eos_id if c.eos_id is not None else c.vocab_size
        self.bos_id = c.bos_id if c.bos_id is not None else self.eos_id
        self.n_vocab = max(c.vocab_size, self.pad_id + 1, self.eos_id + 1)
        self.wte = nn.Embedding(self.n_vocab, c.n_embd)
        self.mix_left = nn.Linear(c.n_embd, c.n_embd, bias=False) if c.neighbour_mix else None
        n_pos = 2 * c.block_size + c.max_target_len + 2  # room to generate (the rotary tables' length)
        self.wpe = nn.Embedding(n_pos, c.n_embd) if c.abs_pos else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=False)
        self.head = nn.Linear(c.n_embd, self.n_vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying (GPT-2)
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

    def trunk(self, idx, pos, attn_mask=None, caches=None, read=None, prev=None):
        """idx (B, T) ids, pos (B or 1, T) positions -> hidden states (B, T, C); with read (B, T) bool, only
        those positions' (M, C): the last block then runs its attention output and MLP there alone (training
        reads the target positions only, and on star graphs the prompt is most of a row). prev (B, T): the id
        before each position, -1 for none (neighbour_mix; None: idx shifted right, nothing before column 0)."""
        cos, sin = self.cos[pos][:, :, None, None], self.sin[pos][:, :, None, None]  # (B or 1, T, 1, 1, hd/2)
        at = None if read is None else read.reshape(-1).nonzero().squeeze(1)  # (M,) flat positions read
        x = self.wte(idx)  # (B, T, C)
        if self.mix_left is not None:  # x_i += A e_(i-1): the previous token only, so the model stays causal
            before = F.pad(x[:, :-1], (0, 0, 1, 0)) if prev is None else \
                self.wte(prev.clamp(min=0)) * (prev >= 0)[..., None]  # (B, T, C), zeros where there is none
            x = x + self.mix_left(before)
        if self.wpe is not None:  # pos counts from each row's first real token, in training and generation
            x = x + self.wpe(pos)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, attn_mask, caches[i] if caches else None, at if i == len(self.blocks) - 1 else None)
        return self.norm(x)

    # ------------------------------------------------------------------------- training
    def collate(self, tokens: torch.Tensor, prompt_lens: torch.Tensor, generator=None) -> dict:
        """Clean rows (B, T) -> next-token inputs and targets. Rows end in pad; we write eos where the row
        ends (unless the data already put one there) so the model learns to stop, and an unconditional row
        that does not start with bos gets one, so that its first token is predicted too. A stream window
        (no pad) is used as it is: its first token is context. The loss covers target tokens (and the eos
        after them) only: prompts are given, not predicted."""
        B, T = tokens.shape
        rows_data = self.config.pad_id is not None
        rows = torch.arange(B, device=tokens.device)
        lens = (tokens != self.pad_id).sum(1) if rows_data else torch.full_like(prompt_lens, T)
        add_bos = (prompt_lens == 0) & (tokens[:, 0] != self.bos_id) & rows_data  # (B,)
        shifted = F.pad(tokens, (1, 1), value=self.pad_id)
        shifted[:, 0] = self.bos_id
        seq = torch.where(add_bos[:, None], shifted, F.pad(tokens, (0, 2), value=self.pad_id))  # (B, T+2)
        lens = lens + add_bos.long()
        first = prompt_lens.clamp(min=1)  # (B,) index of the first predicted token: after the prompt or bos
        last = seq[rows, (lens - 1).clamp(min=0)]
        # the data's eos already ends the row (a lone bos is not one, even where bos == eos, as in GPT-2)
        add_eos = ((last != self.eos_id) | (lens <= first)) & rows_data
        seq[rows[add_eos], lens[add_eos]] = self.eos_id
        lens = lens + add_eos.long()
        seq = seq[:, :T + 1 + int(add_bos.any())]  # no column for a bos no row needs
        x, y = seq[:, :-1], seq[:, 1:]  # position j predicts token j+1
        j1 = torch.arange(1, seq.size(1), device=tokens.device)[None, :]  # index of the predicted token
        target = (j1 >= first[:, None]) & (j1 < lens[:, None])  # target tokens + the eos: L + 1 per row
        return {"x": x, "y": torch.where(target, y, -1)}

    def forward(self, batch: dict):
        x, y = batch["x"], batch["y"]  # (B, T), (B, T) with -1 where nothing is predicted
        pos = torch.arange(x.size(1), device=x.device)[None, :]
        read = y >= 0  # (B, T) the positions that predict a target token
        logits = self.head(self.trunk(x, pos, read=read))  # (M, V) at those positions only
        # NLL of the next token, summed over the target positions, divided by their count: the exact NLL per
        # unit (target tokens + the end per row; every token but the first of a stream window)
        n_tokens = read.sum()
        loss = F.cross_entropy(logits.float(), y[read], reduction="sum") / n_tokens.clamp(min=1)
        n = n_tokens.detach().float()
        return loss, {"n_tokens": n, "nll": loss.detach(), "nll_tokens": n}

    # ------------------------------------------------------------------------- sampling
    def pick(self, logits: torch.Tensor, generator=None) -> torch.Tensor:
        """logits (B, V) -> ids (B,): greedy, or temperature / top-k / top-p sampling (in float64).
        Temperature 0 is the argmax unless top_k or top_p narrows the choice: then a draw at temperature 1
        among the kept tokens (top_k=2 = one of the two best, in proportion to their probabilities)."""
        c = self.config
        if c.temperature <= 0 and c.top_k <= 0 and c.top_p >= 1.0:
            return logits.argmax(-1)
        logits = logits.double() / (c.temperature if c.temperature > 0 else 1.0)
        if c.top_k > 0:
            kth = logits.topk(min(c.top_k, logits.size(-1)), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if c.top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            drop = cum - sorted_logits.softmax(-1) >= c.top_p  # drop once the mass before it reaches top_p
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
                 generator=None, history: bool = False):
        """Autoregressive decoding with a KV cache.

        prompt (B, P) right-padded, prompt_lens (B,) -> tokens (B, max_new_tokens), -1 after eos.
        Prompts of different lengths are left-aligned to end together: each row's positions start at 0 at
        its first real token and the padding on the left is masked out of attention. An empty prompt is
        replaced by bos. With history=True also returns the list of partial outputs (one (B, t) tensor per step)."""
        B, P = prompt.shape
        dev = prompt.device
        lens = prompt_lens.clamp(min=1)
        P = max(P, 1)
        start = P - lens  # (B,) left padding of each row
        ctx = torch.full((B, P), self.pad_id, dtype=torch.long, device=dev)
        col = torch.arange(P, device=dev)[None, :]
        src = (col - start[:, None]).clamp(min=0)
        prompt = F.pad(prompt, (0, max(0, P - prompt.size(1))), value=self.pad_id)
        given = torch.where(prompt_lens[:, None] > 0, prompt.gather(1, src.clamp(max=prompt.size(1) - 1)), self.bos_id)
        ctx = torch.where(col >= start[:, None], given, ctx)
        total = P + max_new_tokens
        key_ok = torch.arange(total, device=dev)[None, :] >= start[:, None]  # (B, total): not left padding
        pos_all = (torch.arange(total, device=dev)[None, :] - start[:, None]).clamp(min=0)  # (B, total)
        causal = torch.ones(total, total, dtype=torch.bool, device=dev).tril()
        out = torch.full((B, max_new_tokens), -1, dtype=torch.long, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        steps = []
        seq = ctx
        c = self.config
        if c.kv_cache:
            caches = [{"size": total, "len": 0} for _ in range(c.n_layer)]
        for t in range(max_new_tokens):
            if c.kv_cache:  # feed only what the cache has not seen: the prompt once, then one token a step
                q0, q1 = (0, P) if t == 0 else (P + t - 1, P + t)
                inp = seq[:, q0:q1]
            else:  # recompute everything: the reference the cache must agree with
                q0, q1 = 0, P + t
                inp = seq
            mask = (causal[q0:q1, :q1][None] & key_ok[:, None, :q1]).unsqueeze(1)  # (B, 1, q, k)
            prev = None
            if self.mix_left is not None:  # the ids before the fed columns (-1: none, also in the left padding)
                cols = torch.arange(q0, q1, device=dev)[None, :]
                prev = torch.where(cols > start[:, None], seq[:, (cols - 1).clamp(min=0)[0]], -1)  # (B, q)
            h = self.trunk(inp, pos_all[:, q0:q1], mask, caches if c.kv_cache else None, prev=prev)
            if c.kv_cache:
                for cache in caches:
                    cache["len"] = q1
            nxt = self.pick(self.head(h[:, -1]).float(), generator)  # (B,)
            nxt = torch.where(done, self.eos_id, nxt)
            done = done | (nxt == self.eos_id)
            out[:, t] = torch.where(done, -1, nxt)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            if history:
                steps.append(out[:, :t + 1].clone())
            if done.all():
                break
        return (out, steps) if history else out
