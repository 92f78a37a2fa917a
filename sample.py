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

from data.loader import Dataset, decode, encode
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


def main(argv: list[str]):
    if wants_help(argv):
        return print_help(__file__, __doc__, DEFAULTS)
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    meta, mc = ckpt["meta"], ckpt["model_config"]
    n = config["num_samples"]
    truth = None
    if config["prompt"]:
        ids = encode(config["prompt"], meta)
        prompt, prompt_lens = torch.tensor([ids] * n), torch.full((n,), len(ids))
    elif config["unconditional"]:
        prompt, prompt_lens = torch.zeros(n, 0, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    else:
        data = Dataset(data_dir(ckpt["config"]["dataset"]), config["split"], ckpt["config"]["block_size"])
        tokens, prompt_lens = data.get(range(min(n, data.n_items)))
        prompt, truth = data.split_prompt_target(tokens, prompt_lens)
        prompt = prompt.clamp(min=0)
    max_new = config["max_new_tokens"] or (mc["max_target_len"] if prompt_lens.max() > 0 and mc["max_target_len"]
                                            else mc["block_size"])
    check_max_new_tokens(max_new, mc, int(prompt_lens.max()) if n else 0)
    g = torch.Generator(device=device).manual_seed(config["seed"])
    out = model.generate(prompt.to(device), prompt_lens.to(device), max_new_tokens=max_new, generator=g,
                         history=config["show_history"])
    out, history = out if config["show_history"] else (out, None)
    for i in range(len(out)):
        p = decode(prompt[i, :prompt_lens[i]], meta)
        text = decode(out[i].cpu(), meta)
        line = f"{p} -> {text}" if p else text
        if truth is not None:
            ok = decode(truth[i], meta) == text
            line += f"   [truth: {decode(truth[i], meta)}] {'OK' if ok else 'WRONG'}"
        print(line)
        for t, h in enumerate(history or []):
            print(f"   step {t + 1:3d}: {decode(h[i].cpu(), meta)}")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
