"""
The one training loop of nanoXLM, for every model in models/.

    python train.py                                   # the built-in default below
    python train.py configs/arlm_star_easy.py --max_iters=500 --compile=True
    python train.py configs/ilm_lm1b.py --nproc=8       # DDP: 8 ranks on this machine
    torchrun --nnodes=2 --nproc_per_node=8 ... train.py configs/ilm_lm1b.py   # several machines
    python train.py --help                            # every key, its default and what it does

A model is a file models/<name>.py with Config, Model(config), model(batch) -> (loss, metrics),
model.collate(tokens, prompt_lens, generator) and model.generate(...); models/README.md is the contract.
This file never asks which model it runs. Config files are plain Python, executed as code (like any
training script); --key=value overrides are literals only and never run code. The shared pieces
(configurator, checks, checkpoints, evaluation) are in engine.py.
"""
import copy
import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from data.loader import Dataset, Mixture, NanoError, load_meta
from engine import (DATA_FIELDS, all_finite, all_reduce_sum, autocast_for, build_model, check_config, check_out_dir,
                    check_type, checkpoint_weights, data_dir, data_keys, dumps, evaluate, extends, get_config,
                    git_commit, grown, has_prompts, load_checkpoint, load_state, lock_out_dir, make_optimizer,
                    model_defaults, noised_loss, pick_device, print_help, remove_stale_temp_files, run_main,
                    save_checkpoint, set_threads, vocabulary, wants_help)

# ----------------------------------------------------------------------------- default config
# `python train.py` with no config file (and no --model) runs the ILM star_easy speedrun record on these
# defaults (DEFAULT_CONFIG, below); every config file builds on the defaults here, which are the older
# 24k-step ILM recipe (configs/ilm_star_easy.py): a config sets what it changes from them.
# I/O
out_dir = "out/default"
overwrite = False  # start afresh in an out_dir that already holds a run (its files are kept as <name>.old, .old2 ...)
init_from = ""  # a checkpoint a new run starts from (fine-tuning a shipped model): its weights and model settings
eval_interval = 1000  # steps between evaluations (and checkpoints)
ckpt_interval = 0  # steps between 'last' checkpoints; 0 = eval_interval
log_interval = 10  # steps between JSONL log lines
eval_examples = 1000  # fixed validation set for the loss (rows, or windows of stream data)
eval_gen_examples = 200  # validation prompts generated at each eval (prompt/target data only); 0 = off
eval_batch_size = 250
best_metric = "val_loss"  # 'val_loss' / 'val_nll' (lower is better), 'val_seq_acc' / 'val_tok_acc' (higher)
resume = False  # continue from out_dir/ckpt.pt
wandb_log = False  # also log to Weights & Biases (needs `pip install wandb`; imported only when on)
wandb_project = "nanoxlm"
wandb_run_name = ""  # '' = the out_dir's name
# data
dataset = "star/easy"  # folder under data/ written by its prepare.py: validation, test and the checkpoint's data
train_data = ""  # where training batches come from: '' = dataset; another folder of the same vocabulary, or a
# weighted mix 'star/medium_n56:1,star/hard:3'. A phase may change it: a curriculum (configs/ilm_star_hard_curriculum.py)
block_size = 256  # window length for stream data (rows data brings its own width)
# model: the name of a file in models/; its Config fields are config keys too (n_layer, n_embd, ...).
# ILM here is the model file's 4L/64 network
model = "ilm"
# optimisation
batch_size = 32  # examples per optimizer step, all ranks and micro-steps together
micro_batch_size = 0  # examples per rank per forward; 0 = batch_size // world_size (no accumulation)
max_iters = 24000  # the last step
learning_rate = 3e-3
min_lr = 3e-4  # the schedule decays to this
lr_schedule = "cosine"  # 'cosine', 'constant' or 'wsd' (all after a linear warmup)
decay_frac = 0.3  # wsd: hold learning_rate, then decay linearly to min_lr over this last share of the phase
warmup_iters = 100
weight_decay = 0.3
beta1 = 0.9
beta2 = 0.99
optimizer = "adamw"  # 'adamw', or 'muon': Muon for the blocks' matrices, AdamW for embeddings, heads and norms
grad_clip = 1.0  # 0 = off
ema_decay = 0.0  # > 0 keeps an EMA of the weights, used for eval and saved
overfit_batches = 0  # > 0: train on this many fixed batches (the XLM paper's debug=overfit)
# later phases of one run: dicts with the step they start at and the PHASE_KEYS they change. This one is
# configs/ilm_star_easy.py's phase 2: twice the batch, the cosine restarted at 6e-4, an EMA of the weights
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
# system
device = "auto"  # 'auto', 'cpu', 'cuda', 'cuda:1', ...
dtype = "auto"  # autocast: 'auto' = bfloat16 on CUDA, float32 on CPU; 'bfloat16' also on CPU; 'float32' = off
compile = False  # torch.compile the model
nproc = 1  # > 1: DDP over this many ranks on this machine (torchrun --standalone --nproc_per_node=N, quieter)
threads = 0  # CPU threads of each process; 0 = OMP_NUM_THREADS when set, else the cores not busy now (at least 1)
seed = 1337
# -----------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in globals().items() if not k.startswith("_") and isinstance(v, (bool, int, float, str, list))}
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "ilm_star_easy_speedrun.py")
# A phase starts at step `start` and changes some of these keys; it keeps what earlier phases set. Its
# warmup and cosine run over the phase itself (from its start to the next phase's start, or max_iters).
PHASE_KEYS = ("batch_size", "micro_batch_size", "learning_rate", "min_lr", "lr_schedule", "decay_frac",
              "warmup_iters", "weight_decay", "ema_decay", "train_data")


def check_phases(config: dict) -> list[dict]:
    """The settings of every phase that starts before max_iters: phase 0 is the config itself (start 0);
    each later one is the one before it + its dict. 'end' is where the phase's LR schedule ends."""
    plan, start = [{**config, "start": 0}], 0
    for i, phase in enumerate(config["phases"]):
        where = f"phases[{i}]"
        if not isinstance(phase, dict) or type(phase.get("start")) is not int:  # start=True is no step 1
            raise NanoError(f"{where} must be a dict with the step it starts at, e.g. dict(start=20000, batch_size=64)")
        bad = [k for k in phase if k not in PHASE_KEYS + ("start",)]
        if bad:
            raise NanoError(f"{where}: {bad[0]!r} cannot change within a run; a phase sets {', '.join(PHASE_KEYS)}")
        if phase["start"] <= start:
            raise NanoError(f"{where}: start={phase['start']} must come after the previous phase's start {start}")
        start = phase["start"]
        merged = {**plan[-1], **{k: check_type(k, v, DEFAULTS[k], where) for k, v in phase.items() if k != "start"},
                  "start": start}
        try:
            check_config(merged, config["model"])
        except NanoError as e:
            raise NanoError(f"{where}: {e}")
        if start < config["max_iters"]:  # a phase after max_iters is not reached (a short test run, say)
            plan.append(merged)
    for phase, nxt in zip(plan, plan[1:] + [None]):
        phase["end"] = nxt["start"] if nxt else config["max_iters"]
    return plan


def split_batches(plan: list[dict], world: int) -> list[SimpleNamespace]:
    """Each phase's batch as micro-batches per rank x accumulation steps, checked once before training."""
    out = []
    for P in plan:
        micro = P["micro_batch_size"] or P["batch_size"] // world
        if micro <= 0 or P["batch_size"] % (micro * world):
            raise NanoError(f"batch_size={P['batch_size']} must be a multiple of micro_batch_size x world_size = "
                            f"{micro} x {world}; change batch_size or micro_batch_size")
        out.append(SimpleNamespace(**P, micro=micro, grad_accum=P["batch_size"] // (micro * world)))
    return out


def get_lr(step: int, P) -> float:
    """Linear warmup, then cosine (or constant, or wsd) to min_lr, all within the phase [P.start, P.end)."""
    step = step - P.start
    if step < P.warmup_iters:
        return P.learning_rate * (step + 1) / P.warmup_iters
    if P.lr_schedule == "constant":
        return P.learning_rate
    progress = min(1.0, (step - P.warmup_iters) / max(1, P.end - P.start - P.warmup_iters))
    if P.lr_schedule == "wsd":  # warmup-stable-decay (MiniCPM; modded-nanogpt's cooldown): flat, then a line down
        return P.learning_rate - max(0.0, (progress - 1 + P.decay_frac) / P.decay_frac) * (P.learning_rate - P.min_lr)
    return P.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (P.learning_rate - P.min_lr)


def batch_items(data: Dataset | Mixture, C, step: int) -> np.ndarray:
    """The global batch of a step is a function of (seed, step) alone: resuming needs no data cursor, and
    1 process x 2 micro-steps sees the same examples as 2 processes x 1."""
    data_step = step % C.overfit_batches if C.overfit_batches else step
    g = torch.Generator().manual_seed(C.seed * 1_000_003 + data_step)
    return data.draw(C.batch_size, g)


def open_train_data(plan: list[dict], meta: dict, block_size: int) -> dict[str, Dataset | Mixture]:
    """Each phase's train_data, opened once: {spec: its data}. A spec is '' (the dataset), a folder, or a mix
    'a:w,b:w' (weights > 0); every folder must share the dataset's vocabulary and layout, so one model reads all."""
    opened = {}
    for i, P in enumerate(plan):
        spec, where = P["train_data"], "train_data" if i == 0 else f"phases[{i - 1}].train_data"
        if spec in opened:
            continue
        parts, weights = [], []
        for entry in (spec or P["dataset"]).split(","):
            name, _, weight = entry.strip().partition(":")
            try:
                w = float(weight or 1)
                assert w > 0 and math.isfinite(w)
            except (ValueError, AssertionError):
                raise NanoError(f"{where}={spec!r}: the weight {weight!r} of {name} must be a number > 0, as in "
                                f"'star/medium_n56:1,star/hard:3'") from None
            try:
                other = load_meta(data_dir(name))
            except NanoError as e:
                raise NanoError(f"{where}={spec!r}: {e}") from None
            if vocabulary(other) != vocabulary(meta) or other["layout"] != meta["layout"]:
                raise NanoError(f"{where}={spec!r}: {name} has another vocabulary or layout than dataset="
                                f"{P['dataset']}; a run trains one vocabulary (start another run from this one "
                                f"with --init_from to grow it)")
            parts.append(Dataset(data_dir(name), "train", block_size))
            weights.append(w)
        opened[spec] = parts[0] if len(parts) == 1 else Mixture(parts, weights)
    return opened


# ----------------------------------------------------------------------------- setup pieces of main()
def start_processes(device: str) -> tuple[bool, int, int, int, str]:
    """DDP from torchrun's environment: (ddp, rank, local_rank, world, this rank's device)."""
    if int(os.environ.get("RANK", -1)) == -1:
        return False, 0, 0, 1, device
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    return True, rank, local_rank, world, f"cuda:{local_rank}" if device.startswith("cuda") else device


RUN_FILES = ("ckpt.pt", "best.pt", "log.jsonl")  # what a run leaves in its out_dir


def refuse_to_replace(C):
    """A run nobody asked to replace, or a --resume with nothing to resume, is refused before anything is built.
    Each refusal advises only what works from the folder as it is (tests/test_guards.py follows every advice)."""
    ckpt_path, best_path = os.path.join(C.out_dir, "ckpt.pt"), os.path.join(C.out_dir, "best.pt")
    has_ckpt, has_best = os.path.exists(ckpt_path), os.path.exists(best_path)
    if C.resume and not has_ckpt:
        if has_best:  # a fresh start would be refused too: say how to start afresh
            raise NanoError(f"--resume: no checkpoint at {ckpt_path} (the folder holds best.pt only); start afresh "
                            f"with --overwrite=True instead of --resume (its files are kept aside) or choose another "
                            f"--out_dir without --resume")
        raise NanoError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start fresh")
    if not C.resume and not C.overwrite and (has_ckpt or has_best):
        resume = f"continue it with --resume{' without --init_from' if C.init_from else ''}, " if has_ckpt else ""
        raise NanoError(f"out_dir {C.out_dir} already holds a run ({'ckpt.pt' if has_ckpt else 'best.pt'}); "
                        f"{resume}choose another --out_dir, or replace it with --overwrite=True")


def claim_out_dir(C, master: bool):
    """Lock out_dir (rank 0), called once everything the run needs is checked: nothing in out_dir changes before.
    --overwrite then moves the old run's files aside to <name>.old (.old2, .old3 ... if taken: never onto an older
    one) rather than deleting them, so a run that fails later, even killed, loses nothing, and no new log ever
    sits beside the old run's checkpoints. -> the lock file."""
    lock = lock_out_dir(C.out_dir) if master else None  # held until this process ends
    refuse_to_replace(C)  # again, under the lock: another run may have written here since the first check
    if master:
        remove_stale_temp_files(C.out_dir)
        if C.overwrite and not C.resume:
            n, suffix = 1, ".old"
            while any(os.path.exists(os.path.join(C.out_dir, name + suffix)) for name in RUN_FILES):
                n, suffix = n + 1, f".old{n + 1}"
            kept = [name for name in RUN_FILES if os.path.exists(os.path.join(C.out_dir, name))]
            for name in kept:
                os.replace(os.path.join(C.out_dir, name), os.path.join(C.out_dir, name + suffix))
            if kept:
                print(f"--overwrite: the run that was in {C.out_dir} is kept as {', '.join(k + suffix for k in kept)}")
    return lock


def start_from(config: dict, meta: dict, resumed: dict | None) -> dict | None:
    """--init_from: the checkpoint a new run starts from, checked against the run (the same model, the same
    vocabulary); its weights are loaded once the model is built, the optimizer starts fresh, at step 0. A run
    from a checkpoint (new, or a resumed one that started from one) builds the checkpoint's model: each model
    setting the run leaves at its default takes the checkpoint's value (one the run sets is kept, and must fit
    the weights); the data decides the vocabulary and lengths. -> the checkpoint of a new run, else None."""
    path = config["init_from"]
    if resumed is not None:  # the same command with --resume continues the run it started
        started = resumed["config"].get("init_from", "") if isinstance(resumed.get("config"), dict) else ""
        if path and path != started:
            ckpt_path = os.path.join(config["out_dir"], "ckpt.pt")
            raise NanoError(f"--init_from={path} starts a new run but --resume continues {ckpt_path}, which started "
                            f"{f'from {started}' if started else 'from scratch'}; run without --init_from to continue "
                            f"it, or without --resume in another --out_dir to start from {path}")
        source, init = (resumed, None) if started else (None, None)
    elif path:
        source = init = load_checkpoint(path, "--init_from")
        if init["model_name"] != config["model"]:
            raise NanoError(f"--init_from={path} holds a {init['model_name']!r} model, this run trains "
                            f"{config['model']!r}; train it with --model={init['model_name']}")
        if vocabulary(meta) != vocabulary(init["meta"]) and not extends(meta, init["meta"]):
            raise NanoError(f"--dataset={config['dataset']} has another vocabulary (vocab_size, itos, tokenizer or "
                            f"special ids) than --init_from={path} was trained on, and does not extend it (the same "
                            f"tokens first, then new ones); start from a checkpoint of data with the same vocabulary")
    else:
        return None
    if source is not None:
        # a setting given at its default value cannot be told from one not given: it takes the checkpoint's too
        defaults = {**model_defaults(config), "block_size": DEFAULTS["block_size"]}
        for k, v in source["model_config"].items():
            if k in defaults and (k == "block_size" or k not in DATA_FIELDS) and config[k] == defaults[k]:
                config[k] = v
        try:
            check_config(config, config["model"])
        except NanoError as e:
            raise NanoError(f"the model settings of {path or 'the checkpoint'}: {e}")
    return init


def load_init_weights(raw_model, init: dict, config: dict) -> list[str]:
    """The weights sampling would use (the EMA's, if the checkpoint has one) into the new run's model, grown
    where the data has more tokens or longer rows. Settings that differ from the checkpoint's but build the same
    weights (a sampler's steps, the noise schedule) stay the run's -> their names; settings that build other
    weights (the network's) are refused, naming them."""
    path = config["init_from"]
    # a key the model file gained after the checkpoint was written ran at its default
    theirs = {**model_defaults(config), **init["model_config"]}
    mine = [k for k in theirs if k in config and config[k] != theirs[k] and k not in DATA_FIELDS]
    def shapes(settings: dict) -> dict:
        with torch.device("meta"):  # shapes only, nothing allocated
            return {k: v.shape for k, v in build_model(config["model"], {**config, **settings}).state_dict().items()}
    own = shapes({})
    if shapes({k: theirs[k] for k in mine}) != own:  # the run's data with the checkpoint's settings
        net = [k for k in mine if shapes({k: theirs[k]}) != own] or mine
        raise NanoError(f"--init_from={path} does not fit the model this run builds: the run sets "
                        f"{', '.join(f'{k}={config[k]!r}' for k in net)} where the checkpoint has "
                        f"{', '.join(f'{k}={theirs[k]!r}' for k in net)}; run with "
                        f"{' '.join(f'--{k}={theirs[k]}' for k in net)} (the checkpoint's)")
    try:
        load_state(raw_model, grown(checkpoint_weights(init), raw_model, init["meta"]["vocab_size"],
                                   config["vocab_size"]), path)
    except NanoError as e:
        raise NanoError(f"--init_from={e}; the data {config['dataset']} gives shorter rows than it was "
                        f"trained on") from None
    return mine


def optional_wandb(C, master: bool):
    """The wandb module when asked for (rank 0), imported before the run changes anything."""
    if not (C.wandb_log and master):
        return None
    try:
        import wandb  # optional: only when asked for
    except ImportError:
        raise NanoError("wandb_log=True needs `pip install wandb`; or leave --wandb_log=False")
    return wandb


def resume_from(ckpt: dict, path: str, C, raw_model, optimizer, ema_model, rank: int, cuda: bool):
    """Load ckpt.pt (as load_checkpoint(path, "--resume") read it) into the model, optimizer, EMA and RNG.
    -> (step, best value, EMA model)."""
    model_config = dataclasses.asdict(raw_model.config)
    if ckpt["model_name"] != C.model:
        raise NanoError(f"{path} holds a '{ckpt['model_name']}' model, this run trains '{C.model}'; continue it "
                        f"with --model={ckpt['model_name']}")
    # a key the model file gained after the checkpoint was written ran at its default (new options default
    # to the old behaviour), so it is compared as that
    was = {**{f.name: f.default for f in dataclasses.fields(raw_model.config)}, **ckpt["model_config"]}
    changed = sorted(k for k in model_config if was[k] != model_config[k])
    if changed:
        raise NanoError(f"{path} was trained with other model settings: " + ", ".join(
            f"{k}={was[k]!r} (now {model_config[k]!r})" for k in changed))
    if ckpt["step"] >= C.max_iters:
        raise NanoError(f"{path} is at step {ckpt['step']}, already at max_iters={C.max_iters}; "
                        f"raise --max_iters to train further")
    load_state(raw_model, ckpt["model"], path)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])  # moves its state onto the parameters' device
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        raise NanoError(f"{path}: its optimizer state does not fit this model's parameters ({type(e).__name__}: "
                        f"{str(e)[:100]}); it is not a checkpoint written by train.py for this model") from None
    if ckpt.get("ema") is not None or C.ema_decay > 0:  # an EMA first switched on here starts from the weights
        ema_model = ema_model or copy.deepcopy(raw_model).requires_grad_(False)
        load_state(ema_model, ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"], path)
    # the best value counts only if it measured the same thing (old checkpoints: the config's metric)
    old_config = ckpt["config"] if isinstance(ckpt.get("config"), dict) else {}
    same_metric = ckpt.get("best_metric", old_config.get("best_metric")) == C.best_metric
    rng = ckpt["rng"]
    try:
        torch.set_rng_state(rng["cpu"][rank % len(rng["cpu"])])
        if cuda and rng.get("cuda"):
            torch.cuda.set_rng_state(rng["cuda"][rank % len(rng["cuda"])])
    except (TypeError, RuntimeError, KeyError, IndexError) as e:
        raise NanoError(f"{path}: its RNG state cannot be restored ({type(e).__name__}); it is not a checkpoint "
                        f"written by train.py") from None
    return ckpt["step"], ckpt.get("best") if same_metric else None, ema_model


class Checkpoints:
    """Writes ckpt.pt / best.pt (rank 0; every rank joins the RNG gather and the checks) and knows which
    checkpoint is good. One written after an evaluation is good; one written without (ckpt_interval, a stop)
    or resumed from is `unverified` until a loss computed from its weights is finite, since the ckpt.pt it
    replaced is gone. Nothing non-finite is ever written."""

    def __init__(self, C, config: dict, meta: dict, master: bool, ddp: bool, world: int):
        self.C, self.config, self.meta, self.master, self.ddp, self.world = C, config, meta, master, ddp, world
        self.ckpt_path, self.best_path = os.path.join(C.out_dir, "ckpt.pt"), os.path.join(C.out_dir, "best.pt")
        self.saved = self.unverified = None  # (step, path)

    def last_good(self) -> str:
        if self.unverified:
            rest = f"{self.best_path} keeps the best evaluated state" if os.path.exists(self.best_path) else \
                "no good checkpoint is left"
            return (f"and {self.unverified[1]} (step {self.unverified[0]}) holds the weights that gave it, so it is "
                    f"no good either; {rest}")
        return f"{self.saved[1]} (step {self.saved[0]}) keeps the last good state" if self.saved else \
            "no checkpoint was written by this run"

    def write(self, path: str, step: int, models: tuple, optimizer, best, result: dict | None, lr: float):
        """result: the evaluation just made (None when there was none)."""
        raw_model, ema_model = models
        bad = [k for k, v in (result or {}).items() if not math.isfinite(v)]
        if bad or not all_finite(raw_model, ema_model):
            what = f"{bad[0]} is {result[bad[0]]}" if bad else "the weights are not finite"
            raise NanoError(f"step {step}: {what}; stopped without writing {path}: {self.last_good()}. Lower "
                            f"learning_rate (now {lr:.2e}), keep grad_clip on, check dtype")
        cuda = next(raw_model.parameters()).is_cuda
        states = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if cuda else None}
        gathered = [states]
        if self.ddp:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, states)
        if self.master:
            save_checkpoint(path, {
                "format_version": 1, "model_name": self.C.model, "model_config": dataclasses.asdict(raw_model.config),
                "model": raw_model.state_dict(), "ema": ema_model.state_dict() if ema_model else None,
                "optimizer": optimizer.state_dict(), "config": self.config, "meta": self.meta, "step": step,
                "best": best, "best_metric": self.C.best_metric,
                "rng": {"cpu": [s["cpu"] for s in gathered], "cuda": [s["cuda"] for s in gathered if cuda]}})
        if path == self.ckpt_path:
            evaluated = result is not None  # else good only once the next step's loss is finite
            self.saved, self.unverified = ((step, path), None) if evaluated else (self.saved, (step, path))

    def loss_was_finite(self):
        if self.unverified:
            self.saved, self.unverified = self.unverified, None


def open_log(C, record: dict, wandb=None):
    """log.jsonl (rank 0): a header that says everything needed to repeat the run, then a record a line.
    (--overwrite moved an old run's log aside already: claim_out_dir.) wandb: optional_wandb's module."""
    path = os.path.join(C.out_dir, "log.jsonl")
    torn = os.path.exists(path) and os.path.getsize(path) and open(path, "rb").read()[-1:] != b"\n"
    log = open(path, "a")
    if torn:  # a kill mid-write left half a line: end it, so every later line parses
        log.write("\n")
    log.write(dumps(record) + "\n")
    if wandb:
        wandb.init(project=C.wandb_project, name=C.wandb_run_name or os.path.basename(C.out_dir),
                   config=record["config"], resume="allow")
    return log, wandb


class StopFlag:
    """Ctrl-C / SIGTERM: finish the step, save, exit (the ranks decide together in the loop). A second
    Ctrl-C exits at once."""

    def __init__(self, rank_name: str):
        self.asked, self.rank_name = False, rank_name
        signal.signal(signal.SIGINT, self.ask)
        signal.signal(signal.SIGTERM, self.ask)

    def ask(self, signum, frame):
        if self.asked:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.asked = True
        print(f"\n{signal.Signals(signum).name}{self.rank_name}: saving a checkpoint after this step "
              f"(again to quit now)", flush=True)

    @staticmethod
    def release():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def next_steps(ckpts) -> str:
    """What to do with the run just made: the commands a user types next."""
    ckpt = ckpts.best_path if os.path.exists(ckpts.best_path) else ckpts.ckpt_path
    return (f"next: python sample.py --ckpt={ckpt} --num_samples=5    # look at what it writes (--show_history: how)\n"
            f"      python eval.py --ckpt={ckpt} --split=test          # accuracy / NLL on the test split")


# ----------------------------------------------------------------------------- main
def with_default_config(argv: list[str]) -> list[str]:
    """argv, led by DEFAULT_CONFIG when it names no config file and no model (the default run)."""
    if any(not a.startswith("--") for a in argv) or any(a.startswith("--model=") for a in argv):
        return argv
    return [DEFAULT_CONFIG, *argv]


def launch_ranks(argv: list[str], nproc: int) -> dict:
    """--nproc=N: this command again as N DDP ranks, started as `torchrun --standalone --nproc_per_node=N` would,
    by torchrun's launcher run in this process, so that what the ranks print is the last word: a rank's one-line
    error, or a stop's "continue with --resume", without torchrun's own report and traceback after it."""
    import logging
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run
    for name in ("torch.distributed.run", "torch.distributed.elastic"):  # its notes on threads, signals, failures
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        args = get_args_parser().parse_args(["--standalone", f"--nproc_per_node={nproc}", __file__])
        args.training_script_args = [a for a in argv if not a.startswith("--nproc=")]  # not parsed as torchrun's
        run(args)
    except ChildFailedError:  # the first rank to fail printed why
        sys.exit(1)
    except SignalException as e:  # Ctrl-C / SIGTERM: forwarded to the ranks, which saved and said so
        sys.exit(128 + int(e.sigval))
    return {}


def main(argv: list[str]) -> dict:
    argv = with_default_config(argv)
    if wants_help(argv):
        rest = [a for a in argv if not wants_help([a])]
        config, files = get_config(rest, DEFAULTS), [os.path.relpath(a) for a in rest if not a.startswith("--")]
        print_help(__file__, __doc__, DEFAULTS, config["model"], config, " + ".join(files))
        return {}
    t_start = time.time()
    config = get_config(argv, DEFAULTS)
    check_config(config, config["model"])
    check_out_dir(config["out_dir"])
    # everything the run needs is checked before anything in out_dir changes (claim_out_dir, below)
    refuse_to_replace(SimpleNamespace(**config))
    meta = load_meta(data_dir(config["dataset"]))
    resumed = load_checkpoint(os.path.join(config["out_dir"], "ckpt.pt"), "--resume") if config["resume"] else None
    init = start_from(config, meta, resumed)  # --init_from's checkpoint; a checkpoint's model settings into config
    plan = check_phases(config)
    if config["nproc"] > 1 and "LOCAL_RANK" not in os.environ:  # every check above passed: start the ranks
        return launch_ranks(argv, config["nproc"])
    C = SimpleNamespace(**config)
    ddp, rank, local_rank, world, device = start_processes(pick_device(C.device))
    set_threads(C.threads, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    phases = split_batches(plan, world)
    master = rank == 0
    print0 = print if master else (lambda *a, **k: None)
    wandb = optional_wandb(C, master)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(device)  # also without DDP: --device=cuda:1 must own its RNG state and kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if ddp:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    ctx, use_amp = autocast_for(device, C.dtype)

    # data and model: every rank builds the same initial weights (seed), then draws its own dropout (seed + rank)
    path = data_dir(C.dataset)
    train_sets, val_data = open_train_data(plan, meta, C.block_size), Dataset(path, "val", C.block_size)
    if C.best_metric in ("val_seq_acc", "val_tok_acc") and not (C.eval_gen_examples and has_prompts(val_data)):
        raise NanoError(f"best_metric={C.best_metric!r} needs prompt/target data and eval_gen_examples > 0; "
                        f"{C.dataset} has no prompts or generation is off: use best_metric='val_loss'")
    config.update(data_keys(meta, config, [d.meta for t in train_sets.values() for d in getattr(t, "parts", [t])]))
    torch.manual_seed(C.seed)
    raw_model = build_model(C.model, config).to(device)
    if init is not None:  # before the EMA copy and the optimizer: both start from these weights
        own = load_init_weights(raw_model, init, config)
        if own and master:
            print(f"init_from {C.init_from}: its weights, with this run's {', '.join(f'{k}={config[k]!r}' for k in own)}")
    if ddp:
        torch.manual_seed(C.seed + rank)
    optimizer = make_optimizer(raw_model, C, fused=cuda)
    ema_model = copy.deepcopy(raw_model).requires_grad_(False) if C.ema_decay > 0 else None
    ckpts = Checkpoints(C, config, meta, master, ddp, world)
    step, best = 0, None
    if C.resume:
        step, best, ema_model = resume_from(resumed, ckpts.ckpt_path, C, raw_model, optimizer, ema_model, rank, cuda)
        ckpts.unverified = (step, ckpts.ckpt_path)
    started_from = {"ckpt": C.init_from, "step": init.get("step")} if init is not None else None
    del init, resumed  # their weights are in the model now: no second copy held through training
    lock = claim_out_dir(C, master)  # all checked: only now does out_dir change (the lock; --overwrite's moves)
    model = torch.compile(raw_model) if C.compile else raw_model
    if ddp:
        model = DDP(model, device_ids=[local_rank] if cuda else None)
    n_params = sum(p.numel() for p in raw_model.parameters())
    log, wandb = open_log(C, {
        "config": config, "git": git_commit(), "argv": argv, "world_size": world, "n_params": n_params,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                    "device": device, "gpu": torch.cuda.get_device_name(device) if cuda else None},
        "autocast": "bfloat16" if use_amp else None, "resumed_at": step if C.resume else None,
        "init_from": started_from}, wandb) if master else (None, None)

    def write_log(record: dict):
        if master:
            log.write(dumps(record) + "\n")
            log.flush()
            if wandb:
                wandb.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    print0(f"{C.model}: {n_params / 1e6:.2f}M parameters | data {C.dataset}: {train_sets[plan[0]['train_data']].n_items} train items"
           f"{' (train_data: ' + ' then '.join(s or C.dataset for s in train_sets) + ')' if list(train_sets) != [''] else ''} | "
           f"batch {C.batch_size} x {len(phases)} phase(s) | device {device}{' bf16 autocast' if use_amp else ''}"
           f"{f' x {world} ranks' if ddp else ''}")
    stop = StopFlag(f" (rank {rank})" if ddp else "")
    from tqdm import tqdm
    pbar = tqdm(total=C.max_iters, initial=step, disable=not master, dynamic_ncols=True, desc=C.model)
    result, tokens_seen, t_last, step_last, first_step_s, stopping = {}, 0, time.time(), step, None, False
    raw_model.train()
    try:  # the handlers and the bar go back also when a step fails (an in-process caller keeps its Ctrl-C)
        while step < C.max_iters and not stopping:
            P = next(p for p in reversed(phases) if p.start <= step)  # this step's phase
            if P.ema_decay > 0 and ema_model is None:  # an EMA switched on by a phase starts from the weights
                ema_model = copy.deepcopy(raw_model).requires_grad_(False)
            micro, grad_accum = P.micro, P.grad_accum
            lr = get_lr(step, P)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for group in optimizer.param_groups:  # the groups of matrices decay; norms and biases do not
                if any(p.dim() >= 2 for p in group["params"]):
                    group["weight_decay"] = P.weight_decay
            train_data = train_sets[P.train_data]
            items = batch_items(train_data, P, step)
            loss_total = 0.0
            for micro_step in range(grad_accum):
                chunk = micro_step * world + rank
                tokens, prompt_lens = train_data.get(items[chunk * micro:(chunk + 1) * micro])
                tokens_seen += int((tokens != train_data.pad).sum()) if train_data.pad is not None else tokens.numel()
                if ddp:  # sync gradients on the last micro-step only
                    model.require_backward_grad_sync = micro_step == grad_accum - 1
                seed = C.seed * 7919 + step * 104_729 + chunk  # the noise is a function of (step, chunk)
                tokens = tokens.to(device, non_blocking=True)
                loss, metrics = noised_loss(model, raw_model, tokens, prompt_lens, seed, ctx)
                (loss / grad_accum).backward()
                loss_total += loss.item() / grad_accum
            # one all-reduce decides together: the loss of the global batch, and whether any rank was asked to
            # stop (so all ranks leave at the same step and save once)
            loss_total, stops = all_reduce_sum([loss_total, float(stop.asked)], device)
            loss_total, stopping = loss_total / world, stops > 0
            if not math.isfinite(loss_total):
                raise NanoError(f"step {step + 1}: loss is {loss_total}; stopped, {ckpts.last_good()}. Lower "
                                f"learning_rate (now {lr:.2e}), check warmup_iters, grad_clip and dtype ({C.dtype})")
            ckpts.loss_was_finite()
            if C.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), C.grad_clip)
            try:
                optimizer.step()
            except RuntimeError as e:  # an update too large for float32 (AdamW's step size is lr / (1 - beta1^t))
                if "overflow" not in str(e):
                    raise
                raise NanoError(f"step {step + 1}: the update overflows float32; stopped, {ckpts.last_good()}. Lower "
                                f"learning_rate (now {lr:.2e})")
            optimizer.zero_grad(set_to_none=True)
            if ema_model is not None:
                torch._foreach_lerp_(list(ema_model.parameters()), list(raw_model.parameters()), 1.0 - P.ema_decay)
            step += 1
            first_step_s = first_step_s or time.time() - t_start
            pbar.update(1)
            if step % C.log_interval == 0 or step == C.max_iters:
                dt = time.time() - t_last
                tok_s, steps_s = tokens_seen * world / dt, (step - step_last) / dt
                pbar.set_postfix(loss=f"{loss_total:.4f}", tok_s=f"{tok_s:,.0f}", ms=f"{1000 / steps_s:.0f}")
                write_log({"step": step, "loss": loss_total, "lr": lr, "tok_s": tok_s, "steps_s": steps_s,
                           **{k: float(v) for k, v in metrics.items()}, "t": time.time() - t_start})
                tokens_seen, t_last, step_last = 0, time.time(), step
            models = (raw_model, ema_model)
            if step % C.eval_interval == 0 or step == C.max_iters:
                r = evaluate(ema_model or raw_model, val_data, C.eval_examples, C.eval_gen_examples, C.eval_batch_size,
                             device, ctx, seed=C.seed)
                result = {f"val_{k}": v for k, v in r.items()}
                value = result.get(C.best_metric)
                better = value is not None and math.isfinite(value) and (
                    best is None or (value > best if "acc" in C.best_metric else value < best))
                if master:
                    pbar.write(f"step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in result.items()))
                write_log({"step": step, **result, "t": time.time() - t_start})  # t: seconds since this process began
                # (every record has it: a run killed without a word still says how long it trained)
                best = value if better else best
                ckpts.write(ckpts.ckpt_path, step, models, optimizer, best, result, lr)  # first: a kill between the
                if better:                                                              # two leaves a resumable run
                    ckpts.write(ckpts.best_path, step, models, optimizer, best, result, lr)
                t_last, step_last, tokens_seen = time.time(), step, 0  # leave evaluation out of the throughput
            elif step % (C.ckpt_interval or C.eval_interval) == 0 or stopping:
                ckpts.write(ckpts.ckpt_path, step, models, optimizer, best, None, lr)
    finally:
        StopFlag.release()
        pbar.close()
    if stopping:
        print0(f"stopped at step {step}; continue with --resume")
    write_log({"step": step, "done": step, "first_step_s": first_step_s, "wall_s": time.time() - t_start})
    if master:
        log.close()
        lock.close()
        if wandb:
            wandb.finish()
        if first_step_s is not None:
            print0(f"first step after {first_step_s:.1f}s; total {time.time() - t_start:.1f}s; "
                   f"checkpoint {ckpts.ckpt_path}")
            if not stopping:  # a stopped run was told to --resume above
                print0(next_steps(ckpts))
    if ddp:
        dist.destroy_process_group()
    return {"step": step, **result}


if __name__ == "__main__":
    if "LOCAL_RANK" not in os.environ:
        run_main(main, sys.argv[1:])
    else:  # a torchrun rank leaves without the interpreter's teardown: a gloo worker thread may still hold the
        # last collective's work, whose tensors Python owns; freed during teardown it needs the GIL, which a
        # finalizing interpreter refuses, and the rank aborts ("terminate called without an active exception",
        # exit -6) after its work is done. Everything is written and closed by now (the checkpoints, the log).
        status = 0
        try:
            run_main(main, sys.argv[1:])
        except SystemExit as e:  # a NanoError's one line (run_main), or a plain exit
            if isinstance(e.code, str):
                # torchrun reports any failed rank with its own traceback and a summary, whatever the rank does;
                # its error file makes that summary's root cause our line (not "To enable traceback see ...").
                # Every rank usually fails alike: the first to fail on this machine prints the line, once (rank 0
                # may be stopped by torchrun before it gets there), then torchrun's summary follows
                error_file, first = os.environ.get("TORCHELASTIC_ERROR_FILE"), os.environ.get("RANK", "0") == "0"
                if error_file:
                    try:  # <attempt dir>/<local rank>/error.json: one marker per attempt, made by the first only
                        os.close(os.open(os.path.join(os.path.dirname(os.path.dirname(error_file)), "reported"),
                                         os.O_CREAT | os.O_EXCL))
                        first = True
                    except OSError:
                        first = False
                if first:
                    print(e.code, file=sys.stderr, flush=True)
                if error_file:
                    with open(error_file, "w") as f:
                        json.dump({"message": {"message": e.code, "extraInfo": {
                            "py_callstack": e.code, "timestamp": str(int(time.time()))}}}, f)
            status = e.code if isinstance(e.code, int) else int(e.code is not None)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
