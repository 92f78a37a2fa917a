"""
Make a shipped pretrained model from a results-table run: the EMA weights (or the weights, without an EMA)
and what is needed to load them (model name and config, the run's config and the data's meta.json, step),
without optimizer state or RNG; stored in float32, since the models are small (a few hundred kB each).
sample.py and eval.py load the result like any checkpoint:

    python bench/ship_checkpoint.py out/ilm_star_easy_seed1337/ckpt.pt models/pretrained/ilm_star_easy.pt
    python bench/ship_checkpoint.py out/mlm_star_easy_seed1337/ckpt.pt models/pretrained/mlm_star_easy.pt --unmask=fixed
    python eval.py --ckpt=models/pretrained/ilm_star_easy.pt --split=test

--key=value sets a sampling setting of the shipped model (a key of its model config), as eval.py's would.
"""
import ast
import os
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import NanoError  # noqa: E402
from engine import load_checkpoint, model_defaults, run_main, save_checkpoint  # noqa: E402


def main(argv: list[str]):
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 2:
        sys.exit(__doc__)
    src, dst = paths
    ckpt = load_checkpoint(src)
    # the model file's settings now: an option added after the run was at its default then
    ckpt["model_config"] = {**model_defaults({"model": ckpt["model_name"]}), **ckpt["model_config"]}
    for item in (a[2:] for a in argv if a.startswith("--")):
        key, _, text = item.partition("=")
        if key not in ckpt["model_config"]:
            raise NanoError(f"--{key}: not a setting of this {ckpt['model_name']} model")
        try:
            ckpt["model_config"][key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            ckpt["model_config"][key] = text
    weights = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
    shipped = {"format_version": ckpt.get("format_version", 1), "model_name": ckpt["model_name"],
               "model_config": ckpt["model_config"], "model": {k: v.float() for k, v in weights.items()},
               "ema": None, "config": ckpt["config"], "meta": ckpt["meta"], "step": ckpt["step"],
               "source": {"ckpt": src, "weights": "ema" if ckpt.get("ema") is not None else "model",
                          "best": ckpt.get("best"), "best_metric": ckpt.get("best_metric")}}
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    save_checkpoint(dst, shipped)
    print(f"{src} (step {ckpt['step']}, {shipped['source']['weights']} weights) -> {dst}, "
          f"{os.path.getsize(dst) / 1e3:.0f} kB")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
