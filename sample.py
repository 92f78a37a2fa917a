"""
Generate from a trained model: the checkpoint alone says which model, its settings and the vocabulary.

    python sample.py --ckpt=out/arlm_star_easy/ckpt.pt                 # test prompts: prompt -> output [truth]
    python sample.py --ckpt=... --prompt="5 9 9 12 ..."                # your own prompt
    python sample.py --ckpt=... --unconditional --num_samples=4        # no prompt at all
    python sample.py --ckpt=... --show_history                         # the generation step by step
    python sample.py --ckpt=... --temperature=0.8 --top_k=5            # any sampling setting of the model
    python sample.py --help                                            # every key, its default, what it does
"""
import sys

import torch

from data.loader import Dataset, NanoError, decode, encode
from engine import check_max_new_tokens, data_dir, inference_setup, print_help, run_main, wants_help

DEFAULTS = dict(
    ckpt="",  # path to a checkpoint written by train.py
    split="test",  # where the prompts come from
    num_samples=5,
    prompt="",  # text to continue / condition on, instead of data prompts
    unconditional=False,  # generate from nothing (empty prompts)
    max_new_tokens=0,  # 0 = the data's longest target (prompt/target data) or block_size
    show_history=False,  # print every step of the generation of each sample
    use_ema=True,  # sample from the EMA weights when the checkpoint has them
    device="auto",
    seed=1337,
)


HISTORY_LEGEND = ("--show_history: 'step k' is the output as it stands after the sampler's k-th step: a masked model "
                  "(MDLM, MLM, BD3-LM) reveals positions of a fixed canvas (<mask> = not yet revealed), an insertion "
                  "model (ILM, FlexMDM) grows it, Edit Flows inserts, deletes and substitutes, ARLM appends")


def star_problem(prompt: str, path: str, truth: str | None) -> str:
    """A star-graph row as a reader sees it: the prompt is the edge list (u v pairs), then source, goal; the
    path is written as its edges (s a a b b goal). Node ids are tokens, so the text splits on spaces."""
    ids = prompt.split()
    edges, source, goal = ids[:-2], ids[-2], ids[-1]
    pairs = " ".join(f"{u}-{v}" for u, v in zip(edges[::2], edges[1::2]))
    walk = path.split()
    nodes = walk[::2] + walk[-1:]  # u1 v1 v1 v2 ... -> u1 v1 v2 ...
    joined = all(a == b for a, b in zip(walk[1:-1:2], walk[2::2])) and len(walk) % 2 == 0
    shown = " -> ".join(nodes) if walk and joined else f"{path or '(nothing)'} (not a chain of edges)"
    verdict = "" if truth is None else ("  right" if path == truth else f"  WRONG (truth: {truth})")
    return f"edges {pairs}\n  from {source} to {goal}: {shown}{verdict}"


def main(argv: list[str]):
    if wants_help(argv):
        return print_help(__file__, __doc__, DEFAULTS)
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    meta, mc = ckpt["meta"], ckpt["model_config"]
    n = config["num_samples"]
    truth = None
    if config["prompt"]:
        ids = encode(config["prompt"], meta)
        if not ids:  # whitespace between tokens is no token: nothing to condition on
            raise NanoError(f"--prompt={config['prompt']!r} holds no tokens; give some text, or use --unconditional "
                            f"to generate from nothing")
        prompt, prompt_lens = torch.tensor([ids] * n), torch.full((n,), len(ids))
    elif config["unconditional"]:
        prompt, prompt_lens = torch.zeros(n, 0, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    else:
        data = Dataset(data_dir(ckpt["config"]["dataset"]), config["split"], ckpt["config"]["block_size"])
        if n > data.n_items:  # not fewer samples than asked without a word
            raise NanoError(f"--num_samples={n}: the {config['split']} split has {data.n_items} prompts, so at most "
                            f"--num_samples={data.n_items} (or --prompt=... / --unconditional for any number)")
        tokens, prompt_lens = data.get(range(n))
        prompt, truth = data.split_prompt_target(tokens, prompt_lens)
        prompt = prompt.clamp(min=0)
    max_new = config["max_new_tokens"] or (mc["max_target_len"] if prompt_lens.max() > 0 and mc["max_target_len"]
                                            else mc["block_size"])
    check_max_new_tokens(max_new, mc, int(prompt_lens.max()) if n else 0)
    g = torch.Generator(device=device).manual_seed(config["seed"])
    out = model.generate(prompt.to(device), prompt_lens.to(device), max_new_tokens=max_new, generator=g,
                         history=config["show_history"])
    out, history = out if config["show_history"] else (out, None)
    star = meta.get("task", {}).get("generator") in ("symmetric", "asymmetric")  # a star-graph problem
    if history:
        print(HISTORY_LEGEND)
    for i in range(len(out)):
        p = decode(prompt[i, :prompt_lens[i]], meta)
        text = decode(out[i].cpu(), meta)
        if star and p:
            print(star_problem(p, text, decode(truth[i], meta) if truth is not None else None))
        else:
            line = f"{p} -> {text}" if p else text
            if truth is not None:
                ok = decode(truth[i], meta) == text
                line += f"   [truth: {decode(truth[i], meta)}] {'OK' if ok else 'WRONG'}"
            print(line)
        for t, h in enumerate(history or []):
            print(f"   step {t + 1:3d}: {decode(h[i].cpu(), meta)}")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
