"""
Where an ILM star model goes wrong: one step at a time on the collator's states, or whole generations from a
given start. Written for star_hard, where ILM's sequence accuracy stays 0 (bench/results/ilm_star_hard_probes.json).

    python bench/diag/ilm_star_diag.py out/<run>/ckpt.pt steps            # greedy step on collated val states, by n
    python bench/diag/ilm_star_diag.py out/<run>/ckpt.pt generate --start=source_goal --n=100

steps: collate val rows as training does (n ~ U{0..L} target tokens dropped), take the model's greedy
(gap, token) and ask whether the canvas with it inserted is still a subsequence of the target, by n; also
how often that move is a lookup in the graph (neither a copy of a neighbouring token, often right on star
paths "u v v w", nor the source or the goal, both in the prompt), and whether the best lookup move is right.
generate: greedy insertion from a start canvas ('empty' as sample.py, 'source', 'source_goal',
'source_parent_goal': the target's first, second-to-last and last tokens), until the stop head fires or the
canvas is 4 tokens longer than the target; --ban_repeats=True forbids a third copy of a node and a second
copy of the source or the goal (a probe of the rest of the model, not a sampler). Prints, writes nothing.
"""
import sys
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/diag/ -> the repository
sys.path.insert(0, ROOT)
from data.loader import Dataset  # noqa: E402
from engine import data_dir, load_checkpoint, model_from_checkpoint  # noqa: E402


def subsequence(a: list, b: list) -> bool:
    it = iter(b)
    return all(x in it for x in a)


def steps(model, data, reps: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    by_n = {}
    for _ in range(reps):
        for s in range(0, data.n_items, 250):
            tokens, plens = data.get(list(range(s, min(s + 250, data.n_items))))
            b = model.collate(tokens, plens, generator=g)
            logits = model.insertion_logits(model.trunk(b["x"], b["n_real"], b["first_gap"]), b["first_gap"], b["n_real"])
            V = logits.size(-1)
            best = logits.flatten(1).argmax(1)  # (B,) the greedy (gap, token), flattened
            n = (b["weight"] > 0).sum(1)  # (B,) tokens dropped
            for i in range(len(best)):
                if n[i] == 0:
                    continue
                first, nr = int(b["first_gap"][i]), int(b["n_real"][i])
                P, L = int(plens[i]), int(b["n_target"][i])
                target = tokens[i, P:P + L].tolist()
                canvas = b["x"][i, first + 1:nr].tolist()
                # the moves that need no lookup: the source, the goal (both in the prompt), a copy of a neighbour
                easy = torch.zeros(nr - first, V, dtype=torch.bool)  # (gaps, V'): gap k is after canvas token k-1
                easy[:, target[0]] = easy[:, target[-1]] = True
                for k in range(nr - first):
                    for j in (k - 1, k):
                        if 0 <= j < len(canvas):
                            easy[k, canvas[j]] = True
                row = logits[i, first:nr]  # (gaps, V')
                moves = {"greedy": int(row.argmax()), "lookup": int(row.masked_fill(easy, float("-inf")).argmax())}
                ok = by_n.setdefault(int(n[i]), [0, 0, 0, 0])  # rows, greedy right, greedy a lookup, best lookup right
                ok[0] += 1
                for name, m in moves.items():
                    gap, tok = divmod(m, V)
                    new = canvas[:gap] + [tok] + canvas[gap:]
                    right = subsequence(new, target)
                    if name == "greedy":
                        ok[1] += right
                        ok[2] += not bool(easy[gap, tok])
                    else:
                        ok[3] += right
    return by_n


def generate(model, data, start: str, n: int, ban_repeats: bool) -> float:
    c, right = model.config, 0
    for i in range(n):
        tokens, plens = data.get([i])
        P = int(plens[0])
        prompt, target = tokens[0, :P].tolist(), [t for t in tokens[0, P:].tolist() if t != c.pad_id]
        canvas = {"empty": [], "source": target[:1], "source_goal": [target[0], target[-1]],
                  "source_parent_goal": [target[0], target[-2], target[-1]]}[start]
        while len(canvas) < len(target) + 4:
            x = torch.tensor([[model.cls_id] + prompt + [model.sep_id] + canvas])
            n_real, first = torch.tensor([x.size(1)]), torch.tensor([P + 1])
            h = model.trunk(x, n_real, first)
            if torch.sigmoid(model.stop_head(h[:, 0]).squeeze(-1)) >= c.stop_threshold:
                break
            logits = model.insertion_logits(h, first, n_real)[0]  # (W, V')
            if ban_repeats:
                for v in set(canvas):
                    if canvas.count(v) >= 2 or v in (target[0], target[-1]):
                        logits[:, v] = float("-inf")
            gap, tok = divmod(int(logits.argmax()), logits.size(-1))
            canvas.insert(gap - P - 1, tok)
        right += canvas == target
        if i < 3:
            print(f"truth {target}\n  out {canvas}")
    return right / n


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    if len(args) != 2 or args[1] not in ("steps", "generate"):
        sys.exit(__doc__)
    ck = load_checkpoint(args[0])
    model = model_from_checkpoint(ck, args[0], use_ema=True).eval()
    data = Dataset(data_dir(ck["config"]["dataset"]), "val", ck["config"]["block_size"])
    with torch.no_grad():
        if args[1] == "steps":
            by_n = steps(model, data)
            print("n: rows | greedy step right | greedy step a lookup | best lookup right")
            for k, (c, r, look, lr) in sorted(by_n.items()):
                print(f"{k:3d}: {c:4d} | {r / c:.2f} | {look / c:.2f} | {lr / c:.2f}")
        else:
            acc = generate(model, data, opts.get("start", "empty"), int(opts.get("n", 100)),
                           opts.get("ban_repeats", "False") == "True")
            print(f"sequence accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
