"""
Evaluate a checkpoint on a whole split: loss (NLL per token for ARLM, the model's bound on it for MDLM and
ILM) and, for prompt/target data, sequence and token accuracy of generation. For language models, also
unconditional samples scored as in the MDLM/ILM papers (XLM Table 2): unigram entropy per sample, and the
generative NLL of the samples under a reference model; the "corpus" numbers score held-out real text of
the same length the same way. Writes results.json, predictions.jsonl / samples.jsonl.

    python eval.py --ckpt=out/arlm_star_easy/ckpt.pt --split=test
    python eval.py --ckpt=... --max_examples=500 --batch_size=250 --temperature=0.0
    python eval.py --ckpt=out/mdlm_shakespeare/ckpt.pt --gen_samples=64 --ref_ckpt=out/arlm_shakespeare/ckpt.pt
    python eval.py --ckpt=... --gen_samples=64 --ref_hf=gpt2-large      # needs `pip install transformers`
"""
import json
import os
import sys
import time

import torch

from data.loader import Dataset, NanoError, decode
from train import eval_items, evaluate, inference_setup, load_checkpoint, model_from_checkpoint

DEFAULTS = dict(
    ckpt="",  # path to a checkpoint written by train.py
    split="test",
    max_examples=0,  # 0 = the whole split
    batch_size=500,
    out_dir="",  # where results go; '' = next to the checkpoint
    gen_samples=0,  # unconditional samples to draw and score (language models); 0 = none
    gen_length=0,  # tokens per sample; 0 = the data's block_size
    ref_ckpt="",  # a nanoXLM checkpoint (an ARLM on the same data) that scores the samples: generative NLL
    ref_hf="",  # or a Hugging Face causal LM name/path (GPT-2 tokenised data only; needs transformers)
    use_ema=True,
    device="auto",
    seed=1337,
)


def main(argv: list[str]) -> dict:
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", ckpt["config"]["dataset"])
    data = Dataset(data_dir, config["split"], ckpt["config"]["block_size"])
    n = config["max_examples"] or (data.n_items if data.rows else data.n_tokens // data.width)  # whole split
    t0 = time.time()
    preds = []
    r = evaluate(model, data, n, n, config["batch_size"], device, seed=config["seed"], progress=True,
                 predictions=preds)
    seconds = time.time() - t0
    results = {"ckpt": config["ckpt"], "model": ckpt["model_name"], "step": ckpt["step"], "split": config["split"],
               "examples": min(n, data.n_items), **r, "seconds": seconds, "model_config": ckpt["model_config"]}
    out_dir = config["out_dir"] or os.path.dirname(os.path.abspath(config["ckpt"]))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    if preds:
        meta = ckpt["meta"]
        with open(os.path.join(out_dir, "predictions.jsonl"), "w") as f:
            for prompt, pred, truth, ok in preds:
                f.write(json.dumps({"prompt": decode(prompt, meta), "text": decode(pred, meta),
                                    "truth": decode(truth, meta), "correct": ok}) + "\n")
    if config["gen_samples"]:
        gen = generative_eval(model, data, config, device, ckpt)
        results.update(gen.pop("stats"))
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(out_dir, "samples.jsonl"), "w") as f:
            for ids in gen["samples"]:
                f.write(json.dumps({"text": decode(ids, ckpt["meta"]), "ids": ids.tolist()}) + "\n")
        r = {**r, **{k: v for k, v in results.items() if k.startswith(("gen_", "corpus_"))}}
    print(" ".join(f"{k} {v:.4f}" for k, v in r.items()) + f" | {results['examples']} examples in {seconds:.1f}s"
          f" | {os.path.join(out_dir, 'results.json')}")
    return results


# ----------------------------------------------------------------------------- language-model scores
def unigram_entropy(ids: torch.Tensor) -> float:
    """Entropy (nats) of the token frequencies within one sample: low means repetitive text."""
    p = torch.bincount(ids).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


@torch.no_grad()
def score(model, samples: list[torch.Tensor], device, batch_size: int) -> float:
    """NLL per token of token sequences under a model, through its own collate and loss (exact for an
    ARLM). Sequences are scored in batches of equal length, since a stream-trained model has no pad."""
    total, count = 0.0, 0.0
    by_len = {}
    for ids in samples:
        if len(ids) > 1:
            by_len.setdefault(len(ids), []).append(ids)
    for group in by_len.values():
        for i in range(0, len(group), batch_size):
            x = torch.stack(group[i:i + batch_size]).to(device)
            loss, metrics = model(model.collate(x, torch.zeros(len(x), dtype=torch.long, device=device)))
            n = float(metrics.get("n_tokens", x.numel()))
            total, count = total + loss.item() * n, count + n
    return total / max(count, 1.0)


@torch.no_grad()
def score_hf(name: str, samples: list[torch.Tensor], meta: dict, device) -> float:
    if meta.get("tokenizer") != "gpt2":
        raise NanoError(f"--ref_hf scores GPT-2 token ids; this data uses {meta.get('tokenizer') or 'its own itos'}")
    try:
        from transformers import AutoModelForCausalLM  # optional: only when asked for
    except ImportError:
        raise NanoError("--ref_hf needs `pip install transformers` (or use --ref_ckpt with one of our ARLMs)")
    ref = AutoModelForCausalLM.from_pretrained(name).to(device).eval()
    total, count = 0.0, 0
    for ids in samples:
        if len(ids) > 1:
            x = ids[None].to(device)
            total += ref(input_ids=x, labels=x).loss.item() * (len(ids) - 1)
            count += len(ids) - 1
    return total / max(count, 1)


def generative_eval(model, data: Dataset, config: dict, device, ckpt: dict) -> dict:
    """Unconditional samples -> entropy and generative NLL, next to the same numbers for real text."""
    n, mc = config["gen_samples"], ckpt["model_config"]
    length = config["gen_length"] or mc["block_size"]
    samples = []
    g = torch.Generator(device=device).manual_seed(config["seed"])
    for i in range(0, n, config["batch_size"]):
        b = min(config["batch_size"], n - i)
        out = model.generate(torch.zeros(b, 0, dtype=torch.long, device=device),
                             torch.zeros(b, dtype=torch.long, device=device), max_new_tokens=length, generator=g)
        samples += [row[row >= 0].cpu() for row in out]
    tokens, _ = data.get(eval_items(data, n)[:n])  # held-out real text: the "corpus" row of XLM Table 2
    pad = data.pad
    corpus = [row[row != pad][:length] if pad is not None else row[:length] for row in tokens]
    stats = {"gen_samples": n, "gen_length": length,
             "gen_entropy": sum(map(unigram_entropy, samples)) / max(len(samples), 1),
             "corpus_entropy": sum(map(unigram_entropy, corpus)) / max(len(corpus), 1),
             "gen_mean_len": sum(map(len, samples)) / max(len(samples), 1)}
    if config["ref_ckpt"]:
        ref_ckpt = load_checkpoint(config["ref_ckpt"])
        if ref_ckpt["meta"].get("vocab_size") != ckpt["meta"].get("vocab_size"):
            raise NanoError(f"--ref_ckpt {config['ref_ckpt']} was trained on another vocabulary")
        ref = model_from_checkpoint(ref_ckpt, config["ref_ckpt"]).to(device).eval()
        stats["gen_nll"] = score(ref, samples, device, config["batch_size"])
        stats["corpus_nll"] = score(ref, corpus, device, config["batch_size"])
        stats["ref"] = config["ref_ckpt"]
    if config["ref_hf"]:
        stats["gen_nll_hf"] = score_hf(config["ref_hf"], samples, ckpt["meta"], device)
        stats["corpus_nll_hf"] = score_hf(config["ref_hf"], corpus, ckpt["meta"], device)
    return {"samples": samples, "stats": stats}


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except NanoError as e:
        sys.exit(f"error: {e}")
