"""
The one training loop of nanoXLM, for every model in models/.

    python train.py                                   # the built-in default below
    python train.py configs/arlm_star_easy.py --max_iters=500 --compile=True
    torchrun --standalone --nproc_per_node=8 train.py configs/ilm_lm1b.py

A model is a file models/<name>.py with Config, Model(config), model(batch) -> (loss, metrics),
model.collate(tokens, prompt_lens, generator) and model.generate(...) (see ../shared/DESIGN.md). This file
never asks which model it runs. Config files are plain Python, executed as code (like any training script);
--key=value overrides are literals only and never run code.
"""
import ast
import builtins
import dataclasses
import difflib
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from data.loader import Dataset, NanoError, load_meta

# ----------------------------------------------------------------------------- default config
# I/O
out_dir = "out/default"
eval_interval = 1000  # steps between evaluations (and checkpoints)
ckpt_interval = 0  # steps between 'last' checkpoints; 0 = eval_interval
log_interval = 10  # steps between JSONL log lines
eval_examples = 1000  # fixed validation set for the loss (rows, or windows of stream data)
eval_gen_examples = 200  # validation prompts generated at each eval (prompt/target data only); 0 = off
eval_batch_size = 250
best_metric = "val_loss"  # 'val_loss' (lower is better) or e.g. 'val_seq_acc' (higher is better)
resume = False  # continue from out_dir/ckpt.pt
# data
dataset = "star/easy"  # folder under data/ written by its prepare.py
block_size = 256  # window length for stream data (rows data brings its own width)
# model: the name of a file in models/; its Config fields are config keys too (n_layer, n_embd, ...).
# The default run is ILM on star_easy, phase 1 of configs/ilm_star_easy.py (the model file's 4L/64 network)
model = "ilm"
# optimisation
batch_size = 32  # examples per optimizer step, all ranks and micro-steps together
micro_batch_size = 0  # examples per rank per forward; 0 = batch_size // world_size (no accumulation)
max_iters = 20000
learning_rate = 3e-3
min_lr = 3e-4  # cosine decays to this
lr_schedule = "cosine"  # 'cosine' or 'constant' (both after a linear warmup)
warmup_iters = 100
weight_decay = 0.3
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0  # 0 = off
ema_decay = 0.0  # > 0 keeps an EMA of the weights, used for eval and saved
overfit_batches = 0  # > 0: train on this many fixed batches (the XLM paper's debug=overfit)
# system
device = "auto"  # 'auto', 'cpu', 'cuda', 'cuda:1', ...
dtype = "bfloat16"  # autocast dtype on CUDA ('float32' to turn it off); CPU always runs float32
compile = False  # torch.compile the model
seed = 1337
# -----------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in globals().items() if not k.startswith("_") and isinstance(v, (bool, int, float, str))}


# ----------------------------------------------------------------------------- configuration
def _check_type(key: str, value, default, where: str):
    if default is None or value is None and default is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise NanoError(f"{where}: {key}={value!r} is a {type(value).__name__}, expected a {type(default).__name__} "
                        f"(default {default!r})")
    return value


def _unknown(key: str, valid, where: str) -> NanoError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return NanoError(f"{where}: unknown config key '{key}'{hint}")


def model_defaults(config: dict) -> dict:
    """The Config fields of the chosen models/<name>.py with their defaults: the model's own config keys."""
    name = config["model"]
    try:
        module = importlib.import_module(f"models.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"models.{name}":
            raise
        have = sorted(f[:-3] for f in os.listdir(os.path.join(os.path.dirname(__file__), "models"))
                      if f.endswith(".py") and not f.startswith("_"))
        raise NanoError(f"model '{name}' not found: there is no models/{name}.py (have: {', '.join(have)})")
    return {f.name: f.default for f in dataclasses.fields(module.Config)}


def get_config(argv: list[str], defaults: dict, extra_defaults=model_defaults) -> dict:
    """Config files (exec'd) then --key=value overrides (literals), checked against the defaults.

    extra_defaults(config) -> dict gives the keys that depend on the config itself: by default the Config
    fields of the chosen model. Unknown keys and wrong types are NanoErrors naming the key."""
    files = [a for a in argv if not a.startswith("--")]
    overrides = [a[2:] for a in argv if a.startswith("--")]
    config, set_by = dict(defaults), {}
    for path in files:
        if not os.path.exists(path):
            raise NanoError(f"config file {path} not found")
        scope = dict(config)
        try:
            with open(path) as f:
                exec(builtins.compile(f.read(), path, "exec"), scope)  # our global `compile` hides the builtin
        except SyntaxError as e:
            raise NanoError(f"{path}, line {e.lineno}: syntax error: {e.msg}")
        for k, v in scope.items():
            if k.startswith("_") or callable(v) or type(v).__name__ == "module":
                continue  # builtins, imports and helpers inside the config file
            if k not in config or v is not config[k]:
                config[k], set_by[k] = v, path
    parsed = {}
    for item in overrides:
        key, eq, text = item.partition("=")  # partition: values may contain '='
        if not eq:
            text = "True"  # a bare --flag means True
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a plain string needs no quotes: --dataset=star/hard
        parsed[key] = value
    for k, v in parsed.items():  # the engine's own keys first: they may decide the rest (model, ckpt)
        if k in defaults:
            config[k] = _check_type(k, v, defaults[k], f"--{k}")
    extra = extra_defaults(config) if extra_defaults else {}
    valid = {**extra, **defaults}
    for k, v in list(config.items()):
        if k not in valid:
            raise _unknown(k, valid, set_by.get(k, "config"))
        if k in set_by:
            config[k] = _check_type(k, v, valid[k], set_by[k])
    for k, v in parsed.items():
        if k not in valid:
            raise _unknown(k, valid, f"--{k}")
        config[k] = _check_type(k, v, valid[k], f"--{k}")
    return {**extra, **config}


# ----------------------------------------------------------------------------- model and checkpoints
def data_keys(meta: dict, config: dict) -> dict:
    """What the data decides for the model: vocabulary, special ids, the longest sequence it will see."""
    rows = meta["layout"] == "rows"
    return dict(vocab_size=meta["vocab_size"], pad_id=meta.get("pad"), bos_id=meta.get("bos"),
                eos_id=meta.get("eos"), mask_id=meta.get("mask"),
                block_size=meta["row_width"] if rows else config["block_size"],
                max_prompt_len=meta.get("max_prompt_len", 0), max_target_len=meta.get("max_target_len", 0))


def build_model(name: str, model_config: dict) -> torch.nn.Module:
    module = importlib.import_module(f"models.{name}")
    fields = {f.name for f in dataclasses.fields(module.Config)}
    return module.Model(module.Config(**{k: v for k, v in model_config.items() if k in fields}))


def save_checkpoint(path: str, state: dict):
    """Atomic: a reader (or a crash mid-write) only ever sees the old file or the new one, never half."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    if not os.path.exists(path):
        raise NanoError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)  # never unpickles code
    except Exception as e:
        if "Weights only load failed" in str(e):
            raise NanoError(f"checkpoint {path} cannot be read: it pickles objects other than tensors and plain "
                            f"values, which could run code; refused (checkpoints load with weights_only=True)")
        first = (str(e).splitlines() or [""])[0].split(". ")[0][:120]
        raise NanoError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first}); "
                        f"it is truncated, corrupt or not a nanoXLM checkpoint")
    if not isinstance(ckpt, dict) or "model_name" not in ckpt or "model" not in ckpt:
        raise NanoError(f"checkpoint {path} is not a nanoXLM checkpoint (no model_name/model)")
    return ckpt


def model_from_checkpoint(ckpt: dict, path: str = "checkpoint", use_ema: bool = True) -> torch.nn.Module:
    model = build_model(ckpt["model_name"], ckpt["model_config"])
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    load_state(model, state, path)
    return model


def load_state(model: torch.nn.Module, state: dict, path: str):
    state = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = [l.strip() for l in str(e).splitlines()[1:3]]
        raise NanoError(f"{path} does not fit this model ({'; '.join(first)}): another model, size or vocabulary")


def inference_setup(argv: list[str], defaults: dict):
    """For sample.py and eval.py: parse --key=value against their defaults plus the checkpoint's model
    settings (so --temperature=0.8 or --steps=64 reach the sampler), load the model, pick the device."""
    cache = {}

    def ckpt_defaults(config: dict) -> dict:
        if not config.get("ckpt"):
            raise NanoError("--ckpt=PATH is required (e.g. --ckpt=out/arlm_star_easy/ckpt.pt)")
        cache["ckpt"] = load_checkpoint(config["ckpt"])
        # the model file's current defaults under the checkpoint's values: a sampler setting added after
        # the checkpoint was written can still be chosen on the command line
        cache["keys"] = {**model_defaults({"model": cache["ckpt"]["model_name"]}), **cache["ckpt"]["model_config"]}
        return dict(cache["keys"])

    config = get_config(argv, defaults, ckpt_defaults)
    ckpt = cache["ckpt"]
    device = config["device"] if config["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt["model_config"] = {k: config[k] for k in cache["keys"]}  # sampling overrides applied
    model = model_from_checkpoint(ckpt, config["ckpt"], use_ema=config["use_ema"]).to(device).eval()
    torch.manual_seed(config["seed"])
    return config, ckpt, model, device


# ----------------------------------------------------------------------------- distributed helpers
def all_reduce_sum(values: list[float], device) -> list[float]:
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def my_share(n: int) -> range:
    """The items of a fixed n-item evaluation set that this rank evaluates (strided over ranks)."""
    if dist.is_available() and dist.is_initialized():
        return range(dist.get_rank(), n, dist.get_world_size())
    return range(n)


# ----------------------------------------------------------------------------- evaluation
def eval_items(data: Dataset, n: int) -> np.ndarray:
    """A fixed evaluation set: the first n rows, or n evenly spaced windows of a stream."""
    n = min(n, data.n_items) if n > 0 else data.n_items
    return np.arange(n) if data.rows else np.linspace(0, data.n_items - 1, n).astype(np.int64)


@torch.no_grad()
def evaluate(model, data: Dataset, n_loss: int, n_gen: int, batch_size: int, device, ctx=nullcontext(),
             seed: int = 0, progress: bool = False, predictions: list | None = None) -> dict:
    """Loss over a fixed set with fixed noise; for prompt/target rows, generation accuracy on n_gen prompts.
    Every rank evaluates its share; sums are all-reduced, so all ranks return the same numbers."""
    from tqdm import tqdm
    was_training = model.training
    model.eval()
    out = {}
    if n_loss:
        items = eval_items(data, n_loss)
        mine = items[list(my_share(len(items)))]
        loss_sum, count, nll_sum, nll_count = 0.0, 0.0, 0.0, 0.0
        chunks = range(0, len(mine), batch_size)
        for i in tqdm(chunks, desc="eval loss", disable=not progress, leave=False):
            tokens, prompt_lens = data.get(mine[i:i + batch_size])
            g = torch.Generator(device=device).manual_seed(seed + i)  # the same noise at every evaluation
            batch = model.collate(tokens.to(device), prompt_lens.to(device), generator=g)
            with ctx:
                loss, metrics = model(batch)
            n = float(metrics.get("n_tokens", 1.0))
            loss_sum, count = loss_sum + loss.item() * n, count + n
            # a model whose loss is not NLL per token (ILM's is per example) reports "nll" over "nll_tokens"
            m = float(metrics.get("nll_tokens", n))
            nll_sum, nll_count = nll_sum + float(metrics.get("nll", loss)) * m, nll_count + m
        loss_sum, count, nll_sum, nll_count = all_reduce_sum([loss_sum, count, nll_sum, nll_count], device)
        out["loss"] = loss_sum / max(count, 1.0)
        out["nll"] = nll_sum / max(nll_count, 1.0)  # per token: exact (ARLM) or the model's upper bound
        out["ppl"] = math.exp(min(out["nll"], 50.0))
    if n_gen and data.rows and data.meta.get("max_target_len", 0) and data.prompt_lens.max() > 0:
        items = eval_items(data, n_gen)
        mine = items[list(my_share(len(items)))]
        seq_ok, tok_ok, tok_n, n_ex = 0.0, 0.0, 0.0, 0.0
        for i in tqdm(range(0, len(mine), batch_size), desc="generate", disable=not progress, leave=False):
            tokens, prompt_lens = data.get(mine[i:i + batch_size])
            prompt, truth = data.split_prompt_target(tokens, prompt_lens)
            g = torch.Generator(device=device).manual_seed(seed + i)
            with ctx:
                pred = model.generate(prompt.clamp(min=0).to(device), prompt_lens.to(device),
                                      max_new_tokens=data.meta["max_target_len"], generator=g)
            pred = pred.cpu()
            s, t, n = accuracy(pred, truth)
            seq_ok, tok_ok, tok_n, n_ex = seq_ok + s.sum().item(), tok_ok + t, tok_n + n, n_ex + len(s)
            if predictions is not None:
                predictions += [(prompt[j], pred[j], truth[j], bool(s[j])) for j in range(len(s))]
        seq_ok, tok_ok, tok_n, n_ex = all_reduce_sum([seq_ok, tok_ok, tok_n, n_ex], device)
        out["seq_acc"] = seq_ok / max(n_ex, 1.0)
        out["tok_acc"] = tok_ok / max(tok_n, 1.0)
    model.train(was_training)
    return out


def accuracy(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """pred (B, Lp), truth (B, Lt), both -1 where there is no token. Token accuracy compares position by
    position over the true target; a sequence is right when every token is and the lengths agree."""
    L = max(pred.size(1), truth.size(1))
    pred = torch.nn.functional.pad(pred, (0, L - pred.size(1)), value=-1)
    truth = torch.nn.functional.pad(truth, (0, L - truth.size(1)), value=-1)
    real = truth >= 0
    tok_right = ((pred == truth) & real).sum().item()
    seq_right = (pred == truth).all(1)  # lengths agree too: -1 must line up with -1
    return seq_right, float(tok_right), float(real.sum().item())


# ----------------------------------------------------------------------------- the loop
def get_lr(step: int, C) -> float:
    if step < C.warmup_iters:
        return C.learning_rate * (step + 1) / C.warmup_iters
    if C.lr_schedule == "constant":
        return C.learning_rate
    progress = min(1.0, (step - C.warmup_iters) / max(1, C.max_iters - C.warmup_iters))
    return C.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (C.learning_rate - C.min_lr)


def batch_items(data: Dataset, C, step: int) -> np.ndarray:
    """The global batch of a step is a function of (seed, step) alone: resuming needs no data cursor, and
    1 process x 2 micro-steps sees the same examples as 2 processes x 1."""
    data_step = step % C.overfit_batches if C.overfit_batches else step
    g = torch.Generator().manual_seed(C.seed * 1_000_003 + data_step)
    return torch.randint(data.n_items, (C.batch_size,), generator=g).numpy()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5).stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def main(argv: list[str]) -> dict:
    t_start = time.time()
    config = get_config(argv, DEFAULTS)
    C = SimpleNamespace(**config)
    # DDP from torchrun's environment
    ddp = int(os.environ.get("RANK", -1)) != -1
    rank, local_rank, world = 0, 0, 1
    device = C.device if C.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if ddp:
        rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        if device.startswith("cuda"):
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    master = rank == 0
    print0 = print if master else (lambda *a, **k: None)
    micro = C.micro_batch_size or C.batch_size // world
    if micro <= 0 or C.batch_size % (micro * world):
        raise NanoError(f"batch_size={C.batch_size} must be a multiple of micro_batch_size x world_size = "
                        f"{micro} x {world}; change batch_size or micro_batch_size")
    grad_accum = C.batch_size // (micro * world)
    torch.manual_seed(C.seed + rank)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    use_amp = device_type == "cuda" and C.dtype != "float32"
    ctx = torch.autocast(device_type, dtype=getattr(torch, C.dtype)) if use_amp else nullcontext()
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # data and model
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", C.dataset)
    meta = load_meta(data_dir)
    train_data = Dataset(data_dir, "train", C.block_size)
    val_data = Dataset(data_dir, "val", C.block_size)
    config.update(data_keys(meta, config))
    raw_model = build_model(C.model, config).to(device)
    model_config = dataclasses.asdict(raw_model.config)
    n_params = sum(p.numel() for p in raw_model.parameters())
    decay = [p for p in raw_model.parameters() if p.requires_grad and p.dim() >= 2]  # matrices, embeddings
    no_decay = [p for p in raw_model.parameters() if p.requires_grad and p.dim() < 2]  # norms, biases
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": C.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=C.learning_rate,
                                  betas=(C.beta1, C.beta2), fused=device_type == "cuda")
    ema_model = None
    if C.ema_decay > 0:
        import copy
        ema_model = copy.deepcopy(raw_model).requires_grad_(False)

    # resume
    step, best = 0, None
    ckpt_path = os.path.join(C.out_dir, "ckpt.pt")
    if C.resume:
        if not os.path.exists(ckpt_path):
            raise NanoError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start fresh "
                            f"or set --out_dir to the run to continue")
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt["model_name"] != C.model:
            raise NanoError(f"{ckpt_path} holds a '{ckpt['model_name']}' model, this run trains '{C.model}'")
        changed = {k for k in model_config if ckpt["model_config"].get(k) != model_config[k]}
        if changed:
            raise NanoError(f"{ckpt_path} was trained with other model settings: "
                            + ", ".join(f"{k}={ckpt['model_config'].get(k)!r} (now {model_config[k]!r})"
                                        for k in sorted(changed)))
        load_state(raw_model, ckpt["model"], ckpt_path)
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema_model is not None:  # an EMA first switched on at this resume starts from the trained weights
            load_state(ema_model, ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"], ckpt_path)
        step, best = ckpt["step"], ckpt.get("best")
        rng = ckpt["rng"]
        torch.set_rng_state(rng["cpu"][rank % len(rng["cpu"])])
        if device_type == "cuda" and rng.get("cuda"):
            torch.cuda.set_rng_state(rng["cuda"][rank % len(rng["cuda"])].cpu())
        del ckpt
    model = torch.compile(raw_model) if C.compile else raw_model
    if ddp:
        model = DDP(model, device_ids=[local_rank] if device_type == "cuda" else None)

    def gather_rng() -> dict:
        states = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if device_type == "cuda" else None}
        if not ddp:
            return {"cpu": [states["cpu"]], "cuda": [states["cuda"]] if states["cuda"] is not None else []}
        gathered = [None] * world
        dist.all_gather_object(gathered, states)
        return {"cpu": [s["cpu"] for s in gathered], "cuda": [s["cuda"] for s in gathered if s["cuda"] is not None]}

    def checkpoint(path: str):
        rng = gather_rng()  # every rank must join the gather; only rank 0 writes
        if master:
            save_checkpoint(path, {
                "format_version": 1, "model_name": C.model, "model_config": model_config,
                "model": raw_model.state_dict(), "ema": ema_model.state_dict() if ema_model else None,
                "optimizer": optimizer.state_dict(), "config": config, "meta": meta, "step": step,
                "best": best, "rng": rng})

    # logging: the first line of a run's log says everything needed to repeat it
    if master:
        os.makedirs(C.out_dir, exist_ok=True)
        log_path = os.path.join(C.out_dir, "log.jsonl")
        torn = os.path.exists(log_path) and os.path.getsize(log_path) and open(log_path, "rb").read()[-1:] != b"\n"
        log = open(log_path, "a")
        if torn:  # a kill mid-write left half a line: end it, so every later line parses
            log.write("\n")
        log.write(json.dumps({"config": config, "git": git_commit(), "argv": argv, "world_size": world,
                              "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                                           "numpy": np.__version__}, "n_params": n_params,
                              "resumed_at": step if C.resume else None}) + "\n")
    print0(f"{C.model}: {n_params / 1e6:.2f}M parameters | data {C.dataset}: {train_data.n_items} train items | "
           f"batch {C.batch_size} = {micro} x {grad_accum} accum x {world} ranks | device {device}")

    # Ctrl-C / SIGTERM: finish the step, save, exit. A second Ctrl-C exits at once.
    stop = {"asked": False}

    def ask_stop(signum, frame):
        if stop["asked"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stop["asked"] = True
        print0(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step (again to quit now)")

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)

    def run_eval() -> dict:
        eval_model = ema_model if ema_model is not None else raw_model
        r = evaluate(eval_model, val_data, C.eval_examples, C.eval_gen_examples, C.eval_batch_size, device, ctx,
                     seed=C.seed)
        return {f"val_{k}": v for k, v in r.items()}

    from tqdm import tqdm
    pbar = tqdm(total=C.max_iters, initial=step, disable=not master, dynamic_ncols=True, desc=C.model)
    ckpt_every = C.ckpt_interval or C.eval_interval
    result, tokens_seen, t_last, step_last, first_step_s = {}, 0, time.time(), step, None
    raw_model.train()
    while step < C.max_iters and not stop["asked"]:
        lr = get_lr(step, C)
        for group in optimizer.param_groups:
            group["lr"] = lr
        items = batch_items(train_data, C, step)
        loss_total = 0.0
        for micro_step in range(grad_accum):
            chunk = micro_step * world + rank
            tokens, prompt_lens = train_data.get(items[chunk * micro:(chunk + 1) * micro])
            tokens_seen += int((tokens != train_data.pad).sum()) if train_data.pad is not None else tokens.numel()
            tokens = tokens.to(device, non_blocking=True)
            g = torch.Generator(device=device).manual_seed(C.seed * 7919 + step * 104_729 + chunk)  # noise of (step, chunk)
            batch = raw_model.collate(tokens, prompt_lens.to(device), generator=g)
            if ddp:  # sync gradients on the last micro-step only
                model.require_backward_grad_sync = micro_step == grad_accum - 1
            with ctx:
                loss, metrics = model(batch)
            (loss / grad_accum).backward()
            loss_total += loss.item() / grad_accum
        if ddp:  # log the loss of the global batch, and let all ranks agree on stopping when it is not finite
            loss_total = all_reduce_sum([loss_total], device)[0] / world
        if not math.isfinite(loss_total):
            optimizer.zero_grad(set_to_none=True)
            raise NanoError(f"step {step}: loss is {loss_total}; stopped, {ckpt_path} keeps the last good state. "
                            f"Check learning_rate (now {lr:.2e}), warmup_iters, grad_clip and dtype "
                            f"({C.dtype if use_amp else 'float32'})")
        if C.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), C.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema_model is not None:
            torch._foreach_lerp_(list(ema_model.parameters()), list(raw_model.parameters()), 1.0 - C.ema_decay)
        step += 1
        if first_step_s is None:
            first_step_s = time.time() - t_start
        pbar.update(1)
        if step % C.log_interval == 0 or step == C.max_iters:
            dt = time.time() - t_last
            tok_s, steps_s = tokens_seen * world / dt, (step - step_last) / dt
            pbar.set_postfix(loss=f"{loss_total:.4f}", tok_s=f"{tok_s:,.0f}", ms=f"{1000 / steps_s:.0f}")
            if master:
                log.write(json.dumps({"step": step, "loss": loss_total, "lr": lr, "tok_s": tok_s, "steps_s": steps_s,
                                      **{k: float(v) for k, v in metrics.items()}}) + "\n")
                log.flush()
            tokens_seen, t_last, step_last = 0, time.time(), step
        if step % C.eval_interval == 0 or step == C.max_iters:
            result = run_eval()
            value = result.get(C.best_metric)
            better = value is not None and (best is None or (value > best if "acc" in C.best_metric else value < best))
            if better:
                best = value
            if master:
                pbar.write(f"step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in result.items()))
                log.write(json.dumps({"step": step, **result}) + "\n")
                log.flush()
            if better:
                checkpoint(os.path.join(C.out_dir, "best.pt"))
            checkpoint(ckpt_path)
            t_last, step_last, tokens_seen = time.time(), step, 0  # leave evaluation out of the throughput
        elif step % ckpt_every == 0:
            checkpoint(ckpt_path)
    if stop["asked"]:
        checkpoint(ckpt_path)
        print0(f"stopped at step {step}; continue with --resume")
    pbar.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if master:
        log.write(json.dumps({"done": step, "first_step_s": first_step_s, "wall_s": time.time() - t_start}) + "\n")
        log.close()
        if first_step_s is not None:
            print0(f"first step after {first_step_s:.1f}s; total {time.time() - t_start:.1f}s; checkpoint {ckpt_path}")
    if ddp:
        dist.destroy_process_group()
    return {"step": step, **result}


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except NanoError as e:
        sys.exit(f"error: {e}")
