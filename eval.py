"""
Evaluate a checkpoint on a whole split: loss, NLL per unit (models/README.md: exact for ARLM, the model's
bound for MDLM and ILM, none for MLM) and, for prompt/target data, sequence and token accuracy of
generation, and valid_acc where the data ships a judge of its answers (data/FORMAT.md "Scoring").
For language models, also unconditional samples scored as in the MDLM/ILM papers (XLM Table 2):
unigram entropy per sample, and the generative NLL of the samples under a reference model; the "corpus"
numbers score held-out real text of the same length the same way. Runs in float32 (in-training
evaluation on a GPU runs under bf16 autocast; results.json says which).
Writes results_<name>.json and predictions_/samples_<name>.jsonl, <name> = <checkpoint file>_<dataset>_<split>
(ckpt.pt on star/easy's test split: results_ckpt_star-easy_test.json), next to the checkpoint; for a shipped
checkpoint (models/pretrained/) into out/eval/ instead, so the shipped folder stays as it came. A result that
exists is never replaced unless asked (--overwrite=True); another --out_dir keeps both.

    python eval.py --ckpt=out/arlm_star_easy/ckpt.pt --split=test
    python eval.py --ckpt=... --dataset=star/easy_xlm             # another prepared dataset, same vocabulary
    python eval.py --ckpt=... --max_examples=500 --batch_size=250 --temperature=0.0
    python eval.py --ckpt=out/mdlm_shakespeare/ckpt.pt --gen_samples=64 --ref_ckpt=out/arlm_shakespeare/ckpt.pt
    python eval.py --ckpt=... --gen_samples=64 --ref_hf=gpt2-large      # needs `pip install transformers`
    python eval.py --help                                                # every key, its default, what it does
"""
import importlib.util
import json
import os
import sys
import time
from contextlib import nullcontext

import torch

from data.loader import Dataset, NanoError, decode, load_meta, prepare_hint
from engine import (LossSums, check_max_new_tokens, check_out_dir, data_dir, dumps, eval_items, evaluate,
                    inference_setup, load_checkpoint, model_from_checkpoint, noised_loss, print_help, run_main,
                    vocabulary, wants_help)

DEFAULTS = dict(
    ckpt="",  # path to a checkpoint written by train.py
    dataset="",  # a prepared dataset under data/ ('' = the one the checkpoint was trained on)
    split="test",
    max_examples=0,  # 0 = the whole split
    batch_size=500,
    out_dir="",  # where results go; '' = next to the checkpoint (out/eval for models/pretrained/)
    overwrite=False,  # replace the results of an earlier evaluation of this checkpoint, dataset and split
    gen_samples=0,  # unconditional samples to draw and score (language models); 0 = none
    gen_length=0,  # tokens per sample; 0 = the data's block_size
    ref_ckpt="",  # a nanoXLM ARLM checkpoint on the same vocabulary that scores the samples: generative NLL
    ref_hf="",  # or a Hugging Face causal LM name/path (GPT-2 tokenised data only; needs transformers)
    use_ema=True,
    device="auto",
    seed=1337,
)


SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "pretrained")


def results_name(ckpt: str, dataset: str, split: str) -> str:
    """'out/x/best.pt', 'star/easy', 'test' -> 'best_star-easy_test': the <name> of results_<name>.json
    (bench/star_row.py reads it). The checkpoint's file is in it: best.pt and ckpt.pt of one run (or every
    shipped model) write beside each other without replacing each other's results."""
    stem = os.path.basename(ckpt).removesuffix(".pt")
    return f"{stem}_{os.path.normpath(dataset).strip(os.sep).replace(os.sep, '-')}_{split}"


def results_dir(config: dict) -> str:
    """--out_dir, else the checkpoint's folder, except for a shipped checkpoint: out/eval (models/pretrained/
    holds the shipped files and nothing else)."""
    if config["out_dir"]:
        return config["out_dir"]
    folder = os.path.dirname(os.path.realpath(config["ckpt"]))
    return os.path.join("out", "eval") if folder == os.path.realpath(SHIPPED) else folder


def write_file(path: str, text: str):
    """All or nothing: a full disk or a file-size limit leaves the earlier file (or none), never half of one."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OSError(e.errno, e.strerror, path) from None  # named: a failed write() names no file


def main(argv: list[str]) -> dict:
    if wants_help(argv):
        return print_help(__file__, __doc__, DEFAULTS)
    config, ckpt, model, device = inference_setup(argv, DEFAULTS)
    dataset = config["dataset"] or ckpt["config"]["dataset"]
    path = data_dir(dataset)
    same_vocabulary(load_meta(path), ckpt["meta"], dataset, config["ckpt"])
    data = Dataset(path, config["split"], ckpt["config"]["block_size"])
    if data.rows and data.width > ckpt["model_config"]["block_size"]:
        raise NanoError(f"--dataset={dataset} has rows of {data.width} tokens, longer than the "
                        f"{ckpt['model_config']['block_size']} {config['ckpt']} was built for")
    if config["gen_samples"]:  # a wrong length or scorer should not cost an evaluation run first
        check_max_new_tokens(config["gen_length"] or ckpt["model_config"]["block_size"], ckpt["model_config"],
                             key="gen_length")
    ref = reference_model(config, ckpt["meta"], device)
    out_dir, name = results_dir(config), results_name(config["ckpt"], dataset, config["split"])
    check_out_dir(out_dir)
    paths = {kind: os.path.join(out_dir, f"{kind}_{name}.{ext}")
             for kind, ext in (("results", "json"), ("predictions", "jsonl"), ("samples", "jsonl"))}
    if os.path.exists(paths["results"]) and not config["overwrite"]:  # checked before the evaluation, not after
        raise NanoError(f"{paths['results']} already holds an evaluation of {config['ckpt']} on {dataset} "
                        f"{config['split']}; replace it with --overwrite=True, or keep it and choose another --out_dir")
    os.makedirs(out_dir, exist_ok=True)
    n = config["max_examples"] or (data.n_items if data.rows else data.n_tokens // data.width)  # whole split
    t0 = time.time()
    preds = []
    r = evaluate(model, data, n, n, config["batch_size"], device, seed=config["seed"], progress=True,
                 predictions=preds)
    seconds = time.time() - t0
    valid, judged = load_scorer(path), []
    if valid is not None and preds:  # many right answers (any path through a maze): judge, don't compare
        data_meta = load_meta(path)
        try:
            judged = [{"valid": bool(valid(token_ids(prompt), token_ids(pred), data_meta))}
                      for prompt, pred, _, _ in preds]
        except KeyError as e:  # the judge reads a field of meta.json that this copy of the data lacks
            raise NanoError(f"{os.path.join(path, 'meta.json')} lacks {e}, which the data's score.py needs to "
                            f"judge an answer; {prepare_hint(path)} again")
        r["valid_acc"] = sum(j["valid"] for j in judged) / len(judged)
    results = {"ckpt": config["ckpt"], "model": ckpt["model_name"], "step": ckpt["step"], "dataset": dataset,
               "split": config["split"], "examples": min(n, data.n_items), **r,
               "nll_kind": type(model).nll_kind, "precision": "float32", "seconds": seconds,
               "model_config": ckpt["model_config"]}
    if config["gen_samples"]:
        gen = generative_eval(model, data, config, device, ckpt, ref)
        results.update(gen.pop("stats"))
        r = {**r, **{k: v for k, v in results.items() if k.startswith(("gen_", "corpus_"))}}
    # written once everything is computed, the results last: a results file means a finished evaluation
    if preds:
        meta = ckpt["meta"]
        write_file(paths["predictions"], "".join(
            json.dumps({"prompt": decode(prompt, meta), "text": decode(pred, meta), "truth": decode(truth, meta),
                        "correct": ok, **(judged[i] if judged else {})}) + "\n"
            for i, (prompt, pred, truth, ok) in enumerate(preds)))
    if config["gen_samples"]:
        write_file(paths["samples"], "".join(
            json.dumps({"text": decode(ids, ckpt["meta"]), "ids": ids.tolist()}) + "\n" for ids in gen["samples"]))
    results_path = paths["results"]
    write_file(results_path, dumps(results))
    print(" ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, (int, float)))
          + f" | {results['examples']} examples in {seconds:.1f}s"
          f" | {results_path}")
    return results


def load_scorer(path: str):
    """The data's own judge of a generated target, or None: `valid(prompt, output, meta) -> bool` from a
    score.py in the dataset's folder or the one above it (data/maze/score.py serves data/maze/easy). Given the
    prompt and output ids (no -1) and the evaluated data's meta.json; the engine never asks which model ran."""
    for d in (path, os.path.dirname(os.path.normpath(path))):
        file = os.path.join(d, "score.py")
        if os.path.exists(file):
            spec = importlib.util.spec_from_file_location("dataset_score", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if not callable(getattr(module, "valid", None)):
                raise NanoError(f"{file} must define valid(prompt, output, meta) -> bool")
            return module.valid
    return None


def token_ids(x) -> list[int]:
    """A prompt or output tensor, right-filled with -1 -> its token ids."""
    return [int(i) for i in x if int(i) >= 0]


def same_vocabulary(meta: dict, trained: dict, dataset: str, ckpt_path: str):
    """A checkpoint can be evaluated on another dataset only if the ids mean the same tokens."""
    if vocabulary(meta) != vocabulary(trained):
        raise NanoError(f"--dataset={dataset} has another vocabulary (vocab_size, itos, tokenizer or special ids) "
                        f"than {ckpt_path} was trained on; evaluate it on data made with the same vocabulary")


# ----------------------------------------------------------------------------- language-model scores
def strip_specials(ids: torch.Tensor, meta: dict) -> torch.Tensor:
    """Only the real text: no pad/bos/eos/mask, no ids past the data's vocabulary (a model's own slots)."""
    special = torch.tensor([meta[k] for k in ("pad", "bos", "eos", "mask") if meta.get(k) is not None], dtype=torch.long)
    ids = ids.long()
    return ids[(ids >= 0) & (ids < meta["vocab_size"]) & ~torch.isin(ids, special)]


def unigram_entropy(ids: torch.Tensor) -> float:
    """Entropy (nats) of the token frequencies within one sample: low means repetitive text."""
    if len(ids) == 0:
        return 0.0
    p = torch.bincount(ids).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


@torch.no_grad()
def score(model, samples: list[torch.Tensor], meta: dict, device, batch_size: int) -> float:
    """NLL per unit of texts (specials stripped) under an exact-NLL model, through its own collate and loss.
    Each text gets a start token (the data's bos, else eos, as GPT-2 does) that is context, not scored, so
    every real token is scored, the first included. Texts are batched by equal length (a stream-trained
    model has no pad)."""
    start = meta.get("bos") if meta.get("bos") is not None else meta.get("eos")
    if start is None:
        raise NanoError("generative NLL needs a bos or eos id in meta.json to start each text with")
    by_len = {}
    for ids in samples:
        ids = strip_specials(ids, meta)
        if len(ids):
            by_len.setdefault(len(ids), []).append(torch.cat([torch.tensor([start]), ids]))
    if not by_len:
        raise NanoError(f"all {len(samples)} texts to score hold no text once pad/bos/eos/mask are removed: there is "
                        f"no NLL to compute (the model writes only special tokens: train it longer, or score without "
                        f"--ref_ckpt)")
    sums = LossSums()
    for group in by_len.values():
        for i in range(0, len(group), batch_size):
            x = torch.stack(group[i:i + batch_size]).to(device)
            sums.add(*noised_loss(model, model, x, torch.zeros(len(x), dtype=torch.long), 0, nullcontext()))
    return sums.result(device)["nll"]


@torch.no_grad()
def score_hf(name: str, samples: list[torch.Tensor], meta: dict, device) -> float:
    if meta.get("tokenizer") != "gpt2":
        raise NanoError(f"--ref_hf scores GPT-2 token ids; this data uses {meta.get('tokenizer') or 'its own itos'}")
    try:
        from transformers import AutoModelForCausalLM  # optional: only when asked for
    except ImportError:
        raise NanoError("--ref_hf needs `pip install transformers` (or use --ref_ckpt with one of our ARLMs)")
    ref = AutoModelForCausalLM.from_pretrained(name).to(device).eval()
    start = meta.get("bos") if meta.get("bos") is not None else meta["eos"]  # GPT-2's <|endoftext|>
    total, count = 0.0, 0
    for ids in samples:
        if len(ids):
            x = torch.cat([torch.tensor([start]), ids])[None].to(device)
            total += ref(input_ids=x, labels=x).loss.item() * len(ids)  # HF averages over the len(ids) predictions
            count += len(ids)
    return total / max(count, 1)


def reference_model(config: dict, meta: dict, device):
    """The --ref_ckpt scorer, checked before anything runs; None without one."""
    if not config["ref_ckpt"]:
        return None
    ref_ckpt = load_checkpoint(config["ref_ckpt"])
    ref = model_from_checkpoint(ref_ckpt, config["ref_ckpt"]).to(device).eval()
    if type(ref).nll_kind != "exact":
        raise NanoError(f"--ref_ckpt {config['ref_ckpt']} is a '{ref_ckpt['model_name']}' model, whose NLL is "
                        f"{type(ref).nll_kind}; the scorer must be an autoregressive model (exact NLL)")
    if ref_ckpt["meta"].get("vocab_size") != meta.get("vocab_size"):
        raise NanoError(f"--ref_ckpt {config['ref_ckpt']} was trained on another vocabulary")
    return ref


def length_stats(gen: list[int], corpus: list[int]) -> dict:
    """Sample lengths against real rows' (FlexMDM's and Edit Flows' claim is that they model length): means,
    quartiles, and W1, the mean gap between the i-th shortest sample and the i-th shortest real row (the
    Wasserstein-1 distance of the two length distributions, in tokens; equal counts)."""
    def quartiles(xs):
        xs = sorted(xs)
        return [xs[min(len(xs) - 1, int(q * len(xs)))] for q in (0.25, 0.5, 0.75)] if xs else []

    n = min(len(gen), len(corpus))
    return {"gen_mean_len": sum(gen) / max(len(gen), 1), "corpus_mean_len": sum(corpus) / max(len(corpus), 1),
            "gen_len_quartiles": quartiles(gen), "corpus_len_quartiles": quartiles(corpus),
            "len_w1": sum(abs(a - b) for a, b in zip(sorted(gen)[:n], sorted(corpus)[:n])) / max(n, 1)}


def generative_eval(model, data: Dataset, config: dict, device, ckpt: dict, ref=None) -> dict:
    """Unconditional samples -> entropy and generative NLL (under `ref`), next to the same numbers for real text."""
    n, mc, meta = config["gen_samples"], ckpt["model_config"], ckpt["meta"]
    length = config["gen_length"] or mc["block_size"]  # checked by main() before the evaluation
    samples = []
    g = torch.Generator(device=device).manual_seed(config["seed"])
    for i in range(0, n, config["batch_size"]):
        b = min(config["batch_size"], n - i)
        out = model.generate(torch.zeros(b, 0, dtype=torch.long, device=device),
                             torch.zeros(b, dtype=torch.long, device=device), max_new_tokens=length, generator=g)
        samples += [strip_specials(row.cpu(), meta) for row in out]
    tokens, _ = data.get(eval_items(data, n)[:n])  # held-out real text: the "corpus" row of XLM Table 2
    corpus = [strip_specials(row, meta)[:length] for row in tokens]
    stats = {"gen_samples": n, "gen_length": length,
             "gen_entropy": sum(map(unigram_entropy, samples)) / max(len(samples), 1),
             "corpus_entropy": sum(map(unigram_entropy, corpus)) / max(len(corpus), 1),
             **length_stats([len(x) for x in samples], [len(x) for x in corpus])}
    if ref is not None:
        stats["gen_nll"] = score(ref, samples, meta, device, config["batch_size"])
        stats["corpus_nll"] = score(ref, corpus, meta, device, config["batch_size"])
        stats["ref"] = config["ref_ckpt"]
    if config["ref_hf"]:
        stats["gen_nll_hf"] = score_hf(config["ref_hf"], samples, meta, device)
        stats["corpus_nll_hf"] = score_hf(config["ref_hf"], corpus, meta, device)
    return {"samples": samples, "stats": stats}


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
