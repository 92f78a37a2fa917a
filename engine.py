"""
What train.py, sample.py and eval.py share: the configurator, checks on every setting, the device, the
data path, checkpoints, and evaluation. Each script reads top to bottom and calls into this file; the
models are in models/<name>.py (their contract: models/README.md).
"""
import ast
import builtins
import dataclasses
import difflib
import errno
import fcntl
import glob
import importlib
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import traceback
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist

from data.loader import Dataset, NanoError

ROOT = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- configuration
def check_type(key: str, value, default, where: str):
    if default is None:
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


def model_names() -> list[str]:
    return sorted(os.path.basename(f)[:-3] for f in glob.glob(os.path.join(ROOT, "models", "*.py"))
                  if not os.path.basename(f).startswith("_"))


def model_module(name: str):
    """models/<name>.py, imported by file name; a name that is not a file there is refused before import."""
    if not isinstance(name, str) or name not in model_names():
        raise NanoError(f"model {name!r} not found: there is no models/{name}.py (have: {', '.join(model_names())})")
    return importlib.import_module(f"models.{name}")


def model_defaults(config: dict) -> dict:
    """The Config fields of the chosen models/<name>.py with their defaults: the model's own config keys."""
    return {f.name: f.default for f in dataclasses.fields(model_module(config["model"]).Config)}


def _exec_config(path: str, scope: dict):
    if not os.path.exists(path):
        raise NanoError(f"config file {path} not found")
    if os.path.isdir(path):
        raise NanoError(f"config file {path} is a directory; give a file such as configs/ilm_star_easy.py")
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except UnicodeDecodeError:
        raise NanoError(f"config file {path} is not UTF-8 text")
    try:
        code = builtins.compile(source, path, "exec")
    except SyntaxError as e:
        raise NanoError(f"{path}, line {e.lineno}: syntax error: {e.msg}")
    try:
        exec(code, scope)
    except Exception as e:
        line = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == path]
        where = f"{path}, line {line[-1]}" if line else path
        raise NanoError(f"{where}: {type(e).__name__}: {e}")


def config_files(path: str, chain: tuple = ()) -> list[str]:
    """path, preceded by its base files: a config that sets `base = "configs/<file>.py"` (a string literal, a
    path from the repo root) is that file with its own lines on top, so a variant holds only what differs and
    cannot drift from what it varies. The base is found by reading the file, not running it."""
    if os.path.abspath(path) in chain:
        loop = [os.path.relpath(p, ROOT) for p in chain + (os.path.abspath(path),)]
        raise NanoError(f"config {path}: its base files form a loop ({' -> '.join(loop)}); remove one base line")
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return [path]  # _exec_config says what is wrong with it
    line, base = base_line(path, tree)
    if base is None:
        return [path]
    full = base if os.path.isabs(base) else os.path.join(ROOT, base)
    if os.path.isdir(full):
        raise NanoError(f"{path}, line {line}: base {base!r} is a folder; name a config file in it, "
                        f"e.g. base = \"configs/ilm_star_easy.py\"")
    if not os.path.isfile(full):
        raise NanoError(f"{path}, line {line}: base {base!r} not found (a path from the repo root, "
                        f"e.g. configs/ilm_star_easy.py)")
    return config_files(full, chain + (os.path.abspath(path),)) + [path]


def base_line(path: str, tree: ast.Module) -> tuple[int, str | None]:
    """(line, base) of a config's one `base = "..."`: a top-level line assigning a string literal. Any other
    way of setting base (inside an if or a function, twice, annotated, in a loop, a tuple or :=) would be read
    here one way and run another, so it is refused, naming the line."""
    fix = 'write it as one top-level line, base = "configs/<file>.py"'
    plain = {}  # line -> the literal, for each top-level `base = "..."`
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["base"]:
            if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                raise NanoError(f"{path}, line {node.lineno}: base must be a string literal, the path of the config "
                                f"it varies from the repo root, e.g. base = \"configs/ilm_star_easy.py\"")
            plain[node.targets[0]] = (node.lineno, node.value.value)
    for node in ast.walk(tree):  # every other binding of the name base
        sets = ((isinstance(node, ast.Name) and node.id == "base" and not isinstance(node.ctx, ast.Load))
                or (isinstance(node, ast.alias) and (node.asname or node.name) == "base")
                or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "base"))
        if sets and node not in plain:
            raise NanoError(f"{path}, line {node.lineno}: base is set where it is not a top-level line of its own "
                            f"(a config names the one it varies once, at top level); {fix}")
    if len(plain) > 1:
        first, second = sorted(line for line, _ in plain.values())[:2]
        raise NanoError(f"{path}, line {second}: base is set twice (lines {first} and {second}); keep one")
    return next(iter(plain.values()), (0, None))


def get_config(argv: list[str], defaults: dict, extra_defaults=model_defaults) -> dict:
    """Config files (exec'd) then --key=value overrides (literals), checked against the defaults.

    extra_defaults(config) -> dict gives the keys that depend on the config itself: by default the Config
    fields of the chosen model. Unknown keys and wrong types are NanoErrors naming the key."""
    files = [f for a in argv if not a.startswith("--") for f in config_files(a)]  # each with its bases first
    overrides = [a[2:] for a in argv if a.startswith("--")]
    config, set_by = dict(defaults), {}
    for path in files:
        scope = dict(config)
        _exec_config(path, scope)
        for k, v in scope.items():
            if k.startswith("_") or callable(v) or type(v).__name__ == "module" or k == "base":
                continue  # builtins, imports and helpers inside the config file; base was read above
            if k not in config or v is not config[k]:
                config[k], set_by[k] = v, path
    parsed = {}
    for item in overrides:
        key, eq, text = item.partition("=")  # partition: values may contain '='
        if not eq:
            text = "True"  # a bare --flag means True
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = text  # a plain string needs no quotes: --dataset=star/hard
        parsed[key] = value
    for k, v in parsed.items():  # the engine's own keys first: they may decide the rest (model, ckpt)
        if k in defaults:
            config[k] = check_type(k, v, defaults[k], f"--{k}")
    extra = extra_defaults(config) if extra_defaults else {}
    valid = {**extra, **defaults}
    for k, v in list(config.items()):
        if k not in valid:
            raise _unknown(k, valid, set_by.get(k, "config"))
        if k in set_by:
            config[k] = check_type(k, v, valid[k], set_by[k])
    for k, v in parsed.items():
        if k not in valid:
            raise _unknown(k, valid, f"--{k}")
        config[k] = check_type(k, v, valid[k], f"--{k}")
    return {**extra, **config}


def print_help(script: str, doc: str, defaults: dict, model: str = "", values: dict | None = None, source: str = ""):
    """--help: every key with its value and the comment beside it in the source (the script's keys, then the
    chosen model's Config fields); the values are the defaults, or `values` (a config's, read from `source`)."""
    values = values or {}
    print(doc.strip() + "\n")

    def keys_of(path: str, keys: dict, title: str):
        comments = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"\s*(\w+)\s*(?::[^=#]*)?=[^#]*?(?:#\s*(.*))?$", line)
                if m and m.group(1) in keys and m.group(1) not in comments:
                    comments[m.group(1)] = m.group(2) or ""
        print(title)
        for k, v in keys.items():
            print(f"  --{k}={v!r}".ljust(34) + (f"  # {comments.get(k)}" if comments.get(k) else ""))

    keys_of(script, {k: values.get(k, v) for k, v in defaults.items()},
            f"{os.path.basename(script)} keys (config file or --key=value){f'; the values {source} gives' if source else ''}:")
    if model:
        module = model_module(model)
        keys_of(module.__file__, {f.name: values.get(f.name, f.default) for f in dataclasses.fields(module.Config)},
                f"\nmodels/{model}.py keys (the data sets vocab_size, the *_id keys and the lengths):")


def wants_help(argv: list[str]) -> bool:
    return any(a in ("-h", "--help", "--help=True") for a in argv)


# ----------------------------------------------------------------------------- checks on every setting
def _positive_int(v):
    return isinstance(v, int) and v >= 1


# The engine's own keys: (holds when, what it must be). Keys a config does not have are skipped, so one table
# serves the three scripts. A model's keys are checked against the LIMITS its file declares (check_limits).
RULES = {
    "ema_decay": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "learning_rate": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "min_lr": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "grad_clip": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0 (0 = off)"),
    "warmup_iters": (lambda v: v >= 0, ">= 0"),
    "max_iters": (lambda v: v >= 1, ">= 1"),
    "eval_interval": (_positive_int, ">= 1"),
    "log_interval": (_positive_int, ">= 1"),
    "ckpt_interval": (lambda v: v >= 0, ">= 0 (0 = eval_interval)"),
    "batch_size": (_positive_int, ">= 1"),
    "eval_batch_size": (_positive_int, ">= 1"),
    "micro_batch_size": (lambda v: v >= 0, ">= 0 (0 = batch_size / world size)"),
    "eval_examples": (lambda v: v >= 0, ">= 0"),
    "eval_gen_examples": (lambda v: v >= 0, ">= 0"),
    "overfit_batches": (lambda v: v >= 0, ">= 0"),
    "block_size": (_positive_int, ">= 1"),
    "seed": (lambda v: 0 <= v < 2 ** 32, "in [0, 2^32)"),
    "threads": (lambda v: 0 <= v <= 1024, "in [0, 1024] (0 = the free cores)"),
    "lr_schedule": (lambda v: v in ("cosine", "constant", "wsd"), "'cosine', 'constant' or 'wsd'"),
    "decay_frac": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "optimizer": (lambda v: v in ("adamw", "muon"), "'adamw' or 'muon'"),
    "dtype": (lambda v: v in ("auto", "bfloat16", "float32"),
              "'auto' (bfloat16 on CUDA, float32 on CPU), 'bfloat16' or 'float32'; float16 would need loss "
              "scaling, which this loop does not do"),
    "best_metric": (lambda v: v in ("val_loss", "val_nll", "val_seq_acc", "val_tok_acc"),
                    "'val_loss', 'val_nll', 'val_seq_acc' or 'val_tok_acc'"),
    "num_samples": (_positive_int, ">= 1"),
    "max_examples": (lambda v: v >= 0, ">= 0 (0 = the whole split)"),
    "max_new_tokens": (lambda v: v >= 0, ">= 0 (0 = the data's length)"),
    "gen_samples": (lambda v: v >= 0, ">= 0"),
    "gen_length": (lambda v: v >= 0, ">= 0"),
}


def check_config(config: dict, model: str | None = None):
    """Every setting in its range, before anything runs: one line naming the key, its value and the range.
    model: the models/<name>.py whose Config fields are checked too (check_limits)."""
    for key, (ok, what) in RULES.items():
        if key in config and config[key] is not None and not ok(config[key]):
            raise NanoError(f"{key}={config[key]!r} must be {what}")
    if model:
        check_limits(model, config)
        if config.get("n_embd", 1) % config.get("n_head", 1):  # every model's heads split its width
            raise NanoError(f"n_head={config['n_head']} must divide n_embd={config['n_embd']}")


# Config fields the engine fills from the data's meta.json: the data decides them, not LIMITS
DATA_FIELDS = ("vocab_size", "pad_id", "bos_id", "eos_id", "mask_id", "block_size", "max_prompt_len", "max_target_len")


def check_limits(name: str, config: dict):
    """The model's own keys against the LIMITS dict its file declares beside Config (models/README.md):
    (lo, hi) a number in [lo, hi], a tuple of strings the choices. Every field but a bool and the data's
    needs an entry, so a new option cannot slip in unchecked. Keys config lacks are checked at their default."""
    module = model_module(name)
    limits = getattr(module, "LIMITS", None)
    where = f"models/{name}.py"
    if not isinstance(limits, dict):
        raise NanoError(f"{where} has no LIMITS dict: declare the allowed values of its Config fields "
                        f"(models/README.md, 'LIMITS')")
    for field in dataclasses.fields(module.Config):
        key, value = field.name, config.get(field.name, field.default)
        if key in DATA_FIELDS or isinstance(field.default, bool):
            continue
        if key not in limits:
            raise NanoError(f"{where}: Config field {key!r} has no entry in LIMITS; add its range (lo, hi) or its "
                            f"choices ('a', 'b')")
        allowed = limits[key]
        if all(isinstance(a, str) for a in allowed):
            if value not in allowed:
                raise NanoError(f"{key}={value!r} must be one of {', '.join(map(repr, allowed))}")
        else:
            lo, hi = allowed
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and lo <= value <= hi):  # NaN fails both comparisons
                raise NanoError(f"{key}={value!r} must be in [{lo}, {hi}] ({where}, LIMITS)")


def check_out_dir(out_dir: str):
    if not out_dir or not out_dir.strip():
        raise NanoError("out_dir is empty; set --out_dir=out/<run name>")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NanoError(f"out_dir {out_dir} is a file, not a folder; choose another --out_dir")
    parent = out_dir
    while not os.path.exists(parent):  # the nearest folder that exists must let us create the rest
        parent = os.path.dirname(os.path.abspath(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NanoError(f"out_dir {out_dir}: {parent} is not writable; choose another --out_dir")


_HELD = {}  # out_dir -> the open lock file of this process
_CREATED = {}  # out_dir whose .lock this process made -> the nearest folder at or above it that existed before


def lock_out_dir(path: str):
    """One run per out_dir: an exclusive flock held for the life of the process (the kernel drops it when
    the holder dies, so a crashed run never blocks the next)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):  # the nearest folder that exists: what lies below it, this run creates
        existing = os.path.dirname(existing)
    os.makedirs(path, exist_ok=True)
    key = os.path.realpath(path)
    if not os.path.lexists(os.path.join(path, ".lock")):
        _CREATED[key] = os.path.realpath(existing)  # == key when only the lock file is new
    if key in _HELD and not _HELD[key].closed:  # this process holds it already (train.main called again)
        return _HELD[key]
    f = _HELD[key] = open(os.path.join(path, ".lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        del _HELD[key]
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise NanoError(f"out_dir {path} is in use by {holder}; wait for it to finish or choose another --out_dir")
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()} on {platform.node()} (train.py)\n")
    f.flush()
    return f


def git_commit() -> str:
    """The commit the code came from, '+dirty' when tracked .py files differ from it (the log must not claim
    a commit whose code did not run)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "*.py"], cwd=here, timeout=5).returncode
    except Exception:
        return "unknown"
    return (head + ("+dirty" if dirty == 1 else "")) if head else "unknown"


def pick_device(name: str) -> str:
    """'auto' -> cuda:0 when there is one, else cpu; anything else must exist on this machine. A CUDA device
    always comes back with its index: torch.cuda.set_device refuses a bare 'cuda' (found on an H200)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m:
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise NanoError(f"device={name!r}: this machine has no CUDA device; use --device=cpu (or auto)")
        if m.group(1) is not None and int(m.group(1)) >= n:
            raise NanoError(f"device={name!r}: this machine has {n} CUDA device(s), cuda:0 to cuda:{n - 1}")
        return f"cuda:{m.group(1) or 0}"
    if name == "mps" and torch.backends.mps.is_available():
        return name
    if name == "cpu":
        return name
    raise NanoError(f"device={name!r} does not exist here; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def set_threads(n: int, processes: int = 1) -> int:
    """torch's CPU threads for this process. 0: OMP_NUM_THREADS when set, else the cores that are free now
    (cores less the 1-minute load, shared by this machine's processes of the run, at least 1): torch takes
    every core by default, and a core another job holds makes every step wait for it (the default run went
    at 1-6 steps/s with two threads on a 2-core machine whose other core was busy, 13-30 with one)."""
    if n == 0 and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    if n == 0:
        n = max(1, int((os.cpu_count() or 1) - os.getloadavg()[0] + 0.5) // max(1, processes))
    torch.set_num_threads(n)
    return n


class Muon(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024): SGD with Nesterov momentum whose update, per matrix, is replaced by the
    nearest semi-orthogonal matrix (a quintic Newton-Schulz iteration). torch.optim.Muon does the iteration in
    bfloat16, which CPUs without bf16 units run several times slower than the whole step; this one keeps
    float32 off CUDA and stacks the matrices of one shape. The step is scaled by 0.2 sqrt(max(rows, cols)) to
    AdamW's update RMS (Liu et al. 2025, "Muon is Scalable for LLM Training"), so one learning rate and weight
    decay serve both optimizers."""

    def __init__(self, params, lr: float, weight_decay: float, momentum: float = 0.95, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            by_shape = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(tuple(p.shape), []).append(p)
            for (rows, cols), ps in by_shape.items():
                bufs = [self.state[p].setdefault("momentum", torch.zeros_like(p)) for p in ps]
                grads = [p.grad for p in ps]
                torch._foreach_lerp_(bufs, grads, 1 - group["momentum"])  # m = mu m + (1 - mu) g
                G = torch.stack(grads).lerp_(torch.stack(bufs), group["momentum"])  # Nesterov: (1-mu) g + mu m
                X = G.bfloat16() if G.is_cuda else G  # (n, rows, cols)
                if rows > cols:
                    X = X.mT
                X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm <= Frobenius norm <= 1
                a, b, c = 3.4445, -4.7750, 2.0315  # quintic X <- aX + b(XX^T)X + c(XX^T)^2 X: singular values -> ~1
                for _ in range(group["ns_steps"]):
                    A = X @ X.mT
                    X = a * X + (b * A + c * A @ A) @ X
                if rows > cols:
                    X = X.mT
                torch._foreach_mul_(ps, 1 - group["lr"] * group["weight_decay"])  # decoupled weight decay
                torch._foreach_add_(ps, list(X.to(G.dtype).unbind(0)), alpha=-group["lr"] * 0.2 * max(rows, cols) ** 0.5)


class Optimizers:
    """Several torch optimizers stepped as one, with one list of param_groups (the loop sets their lr) and one
    state_dict in torch's format (the groups and per-parameter states numbered on across the parts)."""

    def __init__(self, *parts: torch.optim.Optimizer):
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:  # a property: load_state_dict replaces the parts' groups
        return [g for o in self.parts for g in o.param_groups]

    def step(self):
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True):
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for o in self.parts:
            sd = o.state_dict()
            state.update({i + offset: v for i, v in sd["state"].items()})
            groups += [{**g, "params": [i + offset for i in g["params"]]} for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict):
        if len(sd["param_groups"]) != len(self.param_groups):
            raise ValueError(f"{len(sd['param_groups'])} parameter groups saved, {len(self.param_groups)} here")
        at = 0
        for o in self.parts:
            groups = sd["param_groups"][at:at + len(o.param_groups)]
            at += len(o.param_groups)
            ids = {i for g in groups for i in g["params"]}
            o.load_state_dict({"state": {i: v for i, v in sd["state"].items() if i in ids}, "param_groups": groups})


def make_optimizer(model: torch.nn.Module, C, fused: bool):
    """AdamW, or with optimizer='muon' Muon for the hidden matrices (the 2-D weights of the Linear layers in
    the model's block lists) and AdamW for embeddings, heads, norms and biases, as modded-nanogpt splits them."""
    hidden = set()
    if C.optimizer == "muon":
        for blocks in (m for m in model.modules() if isinstance(m, torch.nn.ModuleList)):
            hidden |= {id(m.weight) for m in blocks.modules() if isinstance(m, torch.nn.Linear)}
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and id(p) not in hidden]  # matrices, embeddings
    no_decay = [p for p in params if p.dim() < 2]  # norms, biases
    adamw = torch.optim.AdamW([{"params": decay, "weight_decay": C.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=C.learning_rate,
                              betas=(C.beta1, C.beta2), fused=fused)
    if not hidden:
        return adamw
    muon = Muon([p for p in params if id(p) in hidden], lr=C.learning_rate, weight_decay=C.weight_decay)
    return Optimizers(adamw, muon)


def autocast_for(device: str, dtype: str):
    """bf16 autocast on CUDA by default ('auto'), on CPU only when asked (dtype='bfloat16')."""
    device_type = device.split(":")[0]
    use = dtype == "bfloat16" or (dtype == "auto" and device_type == "cuda")
    return (torch.autocast(device_type, dtype=torch.bfloat16) if use else nullcontext()), use


def data_dir(dataset: str) -> str:
    """data/<dataset> (an absolute path is taken as it is)."""
    return os.path.join(ROOT, "data", dataset)


# ----------------------------------------------------------------------------- models and checkpoints
def data_keys(meta: dict, config: dict, more: list[dict] = ()) -> dict:
    """What the data decides for the model: vocabulary, special ids, the longest sequence it will see (over
    meta and the `more` metas of one vocabulary that a curriculum also trains on)."""
    metas = [meta, *more]
    rows = meta["layout"] == "rows"
    return dict(vocab_size=meta["vocab_size"], pad_id=meta.get("pad"), bos_id=meta.get("bos"),
                eos_id=meta.get("eos"), mask_id=meta.get("mask"),
                block_size=max(m["row_width"] for m in metas) if rows else config["block_size"],
                max_prompt_len=max(m.get("max_prompt_len", 0) for m in metas),
                max_target_len=max(m.get("max_target_len", 0) for m in metas))


def build_model(name: str, model_config: dict) -> torch.nn.Module:
    module = model_module(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    try:
        return module.Model(module.Config(**{k: v for k, v in model_config.items() if k in fields}))
    except AssertionError as e:  # a model file checks its own settings with asserts: one line, not a traceback
        raise NanoError(f"model {name}: {e or 'a setting is out of range'} (see models/{name}.py's Config)") from None


def all_finite(*models) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in models if m is not None for p in m.state_dict().values()
               if p.is_floating_point())


def remove_stale_temp_files(out_dir: str):
    """A SIGKILL or a full disk mid-write leaves <name>.tmp<pid>; the run holding out_dir's lock removes them."""
    for path in glob.glob(os.path.join(out_dir, "*.pt.tmp*")):
        os.remove(path)


def save_checkpoint(path: str, state: dict):
    """Atomic: a reader (or a crash mid-write) only ever sees the old file or the new one, never half."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        err = os_error_in(e)  # torch.save reports a failed write as a RuntimeError whose context is the OSError
        old = f"; the previous {os.path.basename(path)} is intact" if os.path.exists(path) else ""
        if err is not None and err.errno == errno.ENOSPC:
            raise NanoError(f"no space left writing {path}{old}") from None
        if err is not None:  # a file-size limit, permissions...: the same one line, with what to do
            raise NanoError(io_error_line(err, "cannot write", path) + old) from None
        raise


# What each use of a checkpoint reads from it. train.py writes all of these; a model shipped in models/pretrained/
# holds no optimizer or RNG state: weights to sample, evaluate or start a new run from (--init_from).
CKPT_NEEDS = {
    "sample.py and eval.py": ("model_name", "model_config", "model", "meta", "config", "step"),
    "--resume": ("model_name", "model_config", "model", "step", "optimizer", "rng"),
    "--init_from": ("model_name", "model_config", "model", "meta"),
}
CKPT_TYPES = dict(model_name=str, model_config=dict, model=dict, meta=dict, config=dict, step=int, optimizer=dict,
                  rng=dict)
CKPT_INSIDE = dict(meta=("vocab_size",), config=("dataset", "block_size"), optimizer=("state", "param_groups"),
                   rng=("cpu",))  # what the scripts read inside them


def load_checkpoint(path: str, use: str = "sample.py and eval.py") -> dict:
    """Always onto the CPU (the RNG states must stay CPU tensors); weights move with load_state_dict. Checked
    for what `use` (a key of CKPT_NEEDS) reads, so a checkpoint lacking it is one line, not a KeyError later."""
    if not os.path.exists(path):
        raise NanoError(f"checkpoint {path} not found")
    if os.path.isdir(path):
        raise NanoError(f"checkpoint {path} is a folder; give the file, e.g. {os.path.join(path, 'ckpt.pt')}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch.save's zip archive, or a bare pickle
        # (which weights_only loading then inspects); a text file, say, is no checkpoint at all
        raise NanoError(f"checkpoint {path} is not a checkpoint written by train.py (not a torch.save file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
    except Exception as e:
        if "Weights only load failed" in str(e):
            raise NanoError(f"checkpoint {path} cannot be read: it pickles objects other than tensors and plain "
                            f"values, which could run code; refused (checkpoints load with weights_only=True)")
        first = (str(e).splitlines() or [""])[0].split(". ")[0][:120]
        raise NanoError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first}); "
                        f"it is truncated, corrupt or not a nanoXLM checkpoint")
    if not isinstance(ckpt, dict):
        raise NanoError(f"checkpoint {path} is not a nanoXLM checkpoint (it holds a {type(ckpt).__name__}, not a dict)")
    check_checkpoint(ckpt, path, use)
    return ckpt


def check_checkpoint(ckpt: dict, path: str, use: str):
    """Everything `use` reads is there and of its kind, and model_name names the model the settings are of."""
    needs = CKPT_NEEDS[use]
    missing = [k for k in needs if k not in ckpt]
    if missing:
        if use == "--resume" and all(k in ckpt for k in CKPT_NEEDS["--init_from"]):
            fix = (f"it holds weights only (a shipped model?): start a new run from them without --resume and with "
                   f"--init_from={path} in another --out_dir")
        else:
            fix = "it is not a whole checkpoint written by train.py"
        raise NanoError(f"checkpoint {path} has no {', '.join(map(repr, missing))}, read by {use}; {fix}")
    for k in needs:
        if not isinstance(ckpt[k], CKPT_TYPES[k]) or (CKPT_TYPES[k] is int and isinstance(ckpt[k], bool)):
            raise NanoError(f"checkpoint {path}: its {k!r} is a {type(ckpt[k]).__name__}, not a "
                            f"{CKPT_TYPES[k].__name__} (read by {use}); it is not a checkpoint written by train.py")
        lacks = [x for x in CKPT_INSIDE.get(k, ()) if ckpt[k].get(x) is None or ckpt[k].get(x) == []]
        if lacks:
            raise NanoError(f"checkpoint {path}: its {k!r} has no {lacks[0]!r} (read by {use}); it is not a "
                            f"whole checkpoint written by train.py")
    name, keys = ckpt["model_name"], set(ckpt["model_config"])
    if name not in model_names():
        raise NanoError(f"checkpoint {path} holds a {name!r} model, but there is no models/{name}.py "
                        f"(have: {', '.join(model_names())})")
    # a label that does not fit its weights: MLM and MDLM weights have the same shapes, their settings differ.
    # A setting the named model lacks may be an option it dropped since; it tells only where another model
    # knows more of the checkpoint's settings than the named one
    fields = {n: {f.name for f in dataclasses.fields(model_module(n).Config)} for n in model_names()}
    known = {n: len(keys & fields[n]) for n in model_names()}
    closest = max(known, key=known.get)
    if known[closest] > known[name]:
        unknown = sorted(keys - fields[name])
        raise NanoError(f"checkpoint {path} says model_name={name!r}, but its model_config is models/{closest}.py's "
                        f"({', '.join(unknown[:3])} {'is' if len(unknown) == 1 else 'are'} no {name} setting): its "
                        f"label does not fit its weights")


def plain_keys(state: dict) -> dict:
    """A state dict saved from a compiled (_orig_mod.) or DDP-wrapped (module.) model, keyed as the plain model's."""
    return {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state.items()}


def load_state(model: torch.nn.Module, state: dict, path: str):
    state = plain_keys(state)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:  # other keys or shapes; a value that is no tensor
        first = [l.strip() for l in str(e).splitlines()[1:3]] or [str(e)[:120]]
        raise NanoError(f"{path} does not fit this model ({'; '.join(first)}): another model, size or "
                        f"vocabulary") from None


def checkpoint_weights(ckpt: dict, use_ema: bool = True) -> dict:
    """The weights sampling uses: the EMA's when the checkpoint has one (and use_ema), else the model's."""
    return ckpt["ema"] if use_ema and isinstance(ckpt.get("ema"), dict) else ckpt["model"]


def vocabulary(meta: dict) -> list:
    """What makes ids mean the same tokens: data with equal vocabularies can share a model (eval.py's
    --dataset, train.py's --init_from)."""
    return [meta.get(k) for k in ("vocab_size", "itos", "tokenizer", "pad", "bos", "eos", "mask")]


def extends(meta: dict, old: dict) -> bool:
    """meta's vocabulary is old's with new tokens after it (star_hard's 56 node labels after star_easy's 20):
    the same itos first, the same special ids. A model of old data grows into it (grown())."""
    same = [k for k in ("tokenizer", "pad", "bos", "eos", "mask") if meta.get(k) != old.get(k)]
    itos, old_itos = meta.get("itos"), old.get("itos")
    return not same and itos is not None and old_itos is not None and itos[:len(old_itos)] == old_itos


def grown(state: dict, model: torch.nn.Module, v_old: int, v_new: int) -> dict:
    """The checkpoint's tensors in the shapes of a model built for more tokens (v_old -> v_new) or longer rows.
    A dim that grew by exactly v_new - v_old from at least v_old is a vocabulary: token i keeps its row and the
    model's own ids, which follow the data's (models/README.md), move from v_old + j to v_new + j. Any other dim
    that grew is a length: position i keeps its row. New rows keep the new model's fresh initialisation; a
    tensor that would shrink is left to fail to load."""
    own, out = model.state_dict(), {}
    for k, old in plain_keys(state).items():
        new = own.get(k)
        if not (isinstance(old, torch.Tensor) and new is not None and new.dim() == old.dim()
                and new.shape != old.shape and all(a >= b for a, b in zip(new.shape, old.shape))):
            out[k] = old
            continue
        new = new.clone()
        pieces = [[(slice(0, n), slice(0, n))] for n in old.shape]  # per dim: (where in new, where in old)
        for d, (n_new, n_old) in enumerate(zip(new.shape, old.shape)):
            if v_new > v_old and n_new - n_old == v_new - v_old and n_old >= v_old:
                pieces[d] = [(slice(0, v_old), slice(0, v_old)), (slice(v_new, n_new), slice(v_old, n_old))]
        for part in itertools.product(*pieces):
            new[tuple(p[0] for p in part)] = old[tuple(p[1] for p in part)]
        out[k] = new
    return out


def model_from_checkpoint(ckpt: dict, path: str = "checkpoint", use_ema: bool = True) -> torch.nn.Module:
    model = build_model(ckpt["model_name"], ckpt["model_config"])
    load_state(model, checkpoint_weights(ckpt, use_ema), path)
    return model


def inference_setup(argv: list[str], defaults: dict):
    """For sample.py and eval.py: parse --key=value against their defaults plus the checkpoint's model
    settings (so --temperature=0.8 or --steps=64 reach the sampler), check them, load the model."""
    cache = {}

    def ckpt_defaults(config: dict) -> dict:
        if not config.get("ckpt"):
            raise NanoError("--ckpt=PATH is required (e.g. --ckpt=out/arlm_star_easy/ckpt.pt)")
        cache["ckpt"] = load_checkpoint(config["ckpt"])
        # the model file's current defaults under the checkpoint's values: a sampler setting added after
        # the checkpoint was written can still be chosen on the command line, and one the file has dropped
        # since is no key any more (--key=... is refused as unknown, not taken and ignored)
        now = model_defaults({"model": cache["ckpt"]["model_name"]})
        cache["keys"] = {**now, **{k: v for k, v in cache["ckpt"]["model_config"].items() if k in now}}
        return dict(cache["keys"])

    config = get_config(argv, defaults, ckpt_defaults)
    name = cache["ckpt"]["model_name"]
    try:  # the checkpoint's own settings first: one the model file refuses names the checkpoint, not a flag
        check_limits(name, cache["keys"])
    except NanoError as e:
        raise NanoError(f"{config['ckpt']} holds settings models/{name}.py refuses ({e}): a checkpoint of "
                        f"another model, or of an older models/{name}.py") from None
    check_config(config, name)
    ckpt = cache["ckpt"]
    device = pick_device(config["device"])
    ckpt["model_config"] = {k: config[k] for k in cache["keys"]}  # sampling overrides applied
    model = model_from_checkpoint(ckpt, config["ckpt"], use_ema=config["use_ema"]).to(device).eval()
    torch.manual_seed(config["seed"])
    return config, ckpt, model, device


def check_max_new_tokens(n: int, model_config: dict, prompt_len: int = 0, key: str = "max_new_tokens"):
    """The models' positions are sized for the longest row the data holds: no longer prompt, and no more
    new tokens, than that."""
    if prompt_len > model_config["block_size"]:
        raise NanoError(f"the prompt has {prompt_len} tokens, more than this model's block_size="
                        f"{model_config['block_size']} (the longest sequence it was trained on)")
    if n > model_config["block_size"]:
        raise NanoError(f"{key}={n} is more than this model's block_size={model_config['block_size']} "
                        f"(the longest sequence it was trained on); use at most that")


# ----------------------------------------------------------------------------- JSON that strict parsers read
def json_safe(x):
    """NaN and inf are not JSON: write them as null (a log line must parse everywhere)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def dumps(x) -> str:
    return json.dumps(json_safe(x), allow_nan=False)


# ----------------------------------------------------------------------------- distributed helpers
def all_reduce_sum(values: list[float], device) -> list[float]:
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def my_batches(n: int, batch_size: int) -> list[int]:
    """The starts of the batches of a fixed n-item evaluation set that this rank evaluates: whole batches,
    dealt out over the ranks, so every batch (and its noise, seeded by its start) is the one a single
    process would see, and the numbers do not depend on the number of ranks."""
    starts = list(range(0, n, batch_size))
    if dist.is_available() and dist.is_initialized():
        return starts[dist.get_rank()::dist.get_world_size()]
    return starts


# ----------------------------------------------------------------------------- evaluation
def eval_items(data: Dataset, n: int) -> np.ndarray:
    """A fixed evaluation set: the first n rows, or n evenly spaced windows of a stream."""
    n = min(n, data.n_items) if n > 0 else data.n_items
    return np.arange(n) if data.rows else np.linspace(0, data.n_items - 1, n).astype(np.int64)


def noised_loss(model, raw_model, tokens: torch.Tensor, prompt_lens: torch.Tensor, seed: int, ctx):
    """The model's noise (its collate, with a generator seeded by `seed`) and its loss: training and
    evaluation both come through here. `model` may be the DDP/compiled wrapper of `raw_model`."""
    g = torch.Generator(device=tokens.device).manual_seed(seed)
    batch = raw_model.collate(tokens, prompt_lens.to(tokens.device), generator=g)
    with ctx:
        return model(batch)


class LossSums:
    """Sums of the loss and of the NLL over batches, weighted by the counts each batch reports
    (metrics n_tokens and nll_tokens: models/README.md), all-reduced over ranks at the end."""

    def __init__(self):
        self.loss = self.count = self.nll = self.nll_count = 0.0
        self.has_nll = False

    def add(self, loss: torch.Tensor, metrics: dict):
        n = float(metrics.get("n_tokens", 1.0))
        self.loss, self.count = self.loss + loss.item() * n, self.count + n
        if "nll" in metrics:  # only models whose loss gives an NLL (or a bound on it) report one
            self.has_nll = True
            m = float(metrics["nll_tokens"])
            self.nll, self.nll_count = self.nll + float(metrics["nll"]) * m, self.nll_count + m

    def result(self, device) -> dict:
        loss, count, nll, nll_count, has_nll = all_reduce_sum(
            [self.loss, self.count, self.nll, self.nll_count, float(self.has_nll)], device)
        out = {"loss": loss / max(count, 1.0)}
        if has_nll:
            out["nll"] = nll / max(nll_count, 1.0)  # per unit (models/README.md): exact or the model's bound
            out["ppl"] = math.exp(min(out["nll"], 50.0))
        return out


@torch.no_grad()
def evaluate(model, data: Dataset, n_loss: int, n_gen: int, batch_size: int, device, ctx=nullcontext(),
             seed: int = 0, progress: bool = False, predictions: list | None = None) -> dict:
    """Loss over a fixed set with fixed noise; for prompt/target rows, generation accuracy on n_gen prompts.
    Every rank evaluates its share of the batches; sums are all-reduced, so all ranks return the same numbers,
    the numbers of one process."""
    from tqdm import tqdm
    was_training = model.training
    model.eval()
    out = {}
    if n_loss:
        items = eval_items(data, n_loss)
        sums = LossSums()
        for i in tqdm(my_batches(len(items), batch_size), desc="eval loss", disable=not progress, leave=False):
            tokens, prompt_lens = data.get(items[i:i + batch_size])
            sums.add(*noised_loss(model, model, tokens.to(device), prompt_lens, seed + i, ctx))  # fixed noise
        out.update(sums.result(device))
    if n_gen and has_prompts(data):
        items = eval_items(data, n_gen)
        seq_ok, tok_ok, tok_n, n_ex = 0.0, 0.0, 0.0, 0.0
        for i in tqdm(my_batches(len(items), batch_size), desc="generate", disable=not progress, leave=False):
            tokens, prompt_lens = data.get(items[i:i + batch_size])
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


def has_prompts(data: Dataset) -> bool:
    """Prompt/target rows (star graphs): generation accuracy applies."""
    return bool(data.rows and data.meta.get("max_target_len", 0) and data.prompt_lens.max() > 0)


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


# what to do about an OSError, by errno; io_error_line puts it after the file and the reason
IO_FIXES = {
    errno.ENOSPC: "free some space on that disk or write elsewhere",
    errno.EDQUOT: "free some space (a disk quota is full) or write elsewhere",
    errno.EFBIG: "the file outgrew this process's file-size limit (ulimit -f): raise the limit or write elsewhere",
    errno.EACCES: "this user may not write (or read) there: change its permissions or choose another path",
    errno.EPERM: "this user may not write (or read) there: change its permissions or choose another path",
    errno.EROFS: "it is on a read-only file system: choose another path",
    errno.EISDIR: "a folder stands where a file must go: move it away or choose another path",
    errno.ENOTDIR: "part of the path is a file, not a folder: choose another path",
    errno.ENOENT: "a folder on the path does not exist or cannot hold files (/proc, /sys): choose another path",
    errno.EEXIST: "something of that name exists already: choose another path",
    errno.EINVAL: "that file cannot be written like this (a special file?): choose another path",
}


def io_error_line(e: OSError, what: str = "I/O error on", path: str = "") -> str:
    """An OSError as the one line the scripts print: '<what> <path>: <reason>; <fix>'."""
    path = path or e.filename or "a file"
    reason = e.strerror or errno.errorcode.get(e.errno, "error")
    return f"{what} {path}: {reason}; {IO_FIXES.get(e.errno, 'check that path and its disk')}"


def os_error_in(e: BaseException) -> OSError | None:
    """The OSError behind an exception, if any: torch.save, say, turns a failed write into a RuntimeError whose
    context is the OSError."""
    for _ in range(5):
        if isinstance(e, OSError) and e.errno is not None:
            return e
        e = e.__cause__ or e.__context__
        if e is None:
            return None
    return None


def release_unused_out_dirs():
    """A run that failed before writing anything leaves nothing behind: the lock file and the folders that
    lock_out_dir created for this process go, as long as they hold nothing else (a folder the user made stays)."""
    for key, f in list(_HELD.items()):
        stop = _CREATED.get(key)
        try:
            if stop is None or os.listdir(key) != [".lock"]:
                continue
            f.close()
            os.remove(os.path.join(key, ".lock"))
            d = key
            while d != stop and not os.listdir(d):  # the folders made for it, innermost first
                os.rmdir(d)
                d = os.path.dirname(d)
            del _HELD[key]
        except OSError:
            pass  # best effort: the run's own error is the message


def run_main(main, argv: list[str]):
    """The scripts' entry point (train, eval, sample, the prepare scripts, bench/star_row.py): bad input (a
    NanoError) or a failed read or write (an OSError: full disk, size limit, permissions, a folder where a file
    goes...) is one line on stderr and exit status 1; anything else is a bug and keeps its traceback."""
    try:
        main(argv)
    except NanoError as e:
        release_unused_out_dirs()
        sys.exit(f"error: {e}")
    except BrokenPipeError:  # the reader left (`--help | head`): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        sys.exit(1)
    except Exception as e:
        err = os_error_in(e)
        if err is None:
            raise
        release_unused_out_dirs()
        sys.exit(f"error: {io_error_line(err)}")
