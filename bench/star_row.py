"""
One row of a results table: train a config with one command, evaluate it (the star graphs' test split by
default), and write everything the table needs into bench/results/star/<config>_seed<seed>.json (the
command, its wall time, the machine, the validation curve with elapsed time, the evaluation's numbers). The
README's star table is made from these files by bench/star_table.py; nothing in it is typed by hand. A
language-model row evaluates on --split=val with eval.py's sample scoring (--eval_args) into its own --out.

    OMP_NUM_THREADS=1 python bench/star_row.py configs/ilm_star_easy.py --seed=1337
    OMP_NUM_THREADS=1 python bench/star_row.py configs/ilm_star_easy.py --seed=2
    python bench/star_row.py configs/ilm_star_easy.py --seed=2 --resume     # after a stop: continue the run
    python bench/star_row.py configs/mlm_star_easy.py --no_train --eval_args="--unmask=fixed"   # re-evaluate
    python bench/star_row.py configs/mdlm_shakespeare_char.py --split=val --out=bench/results/shakespeare_char \
        --eval_args="--gen_samples=256 --ref_ckpt=out/arlm_shakespeare_char_seed1337/ckpt.pt"
"""
import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import NanoError  # noqa: E402
from engine import run_main  # noqa: E402
from eval import results_name  # noqa: E402


def machine() -> dict:
    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]}  # > cores: the wall time was shared


def next_step(out_dir: str) -> str:
    """What to do with the run in out_dir after a failure, as advice that works from where it stands: --resume
    only for an unfinished run with a checkpoint, --no_train only for a finished one (advice that cannot work
    sends the user in a circle; tests/test_guards.py follows each)."""
    folder = os.path.join(ROOT, out_dir)
    log = []
    if os.path.exists(os.path.join(folder, "log.jsonl")):
        with open(os.path.join(folder, "log.jsonl")) as f:
            for line in f:
                try:
                    log.append(json.loads(line))
                except ValueError:  # half a line from a kill
                    pass
    done = max((r["done"] for r in log if "done" in r), default=0)
    planned = next((r["config"].get("max_iters") for r in reversed(log) if "config" in r), None)
    if planned is not None and done >= planned and os.path.exists(os.path.join(folder, "ckpt.pt")):
        return "it is finished: evaluate it with --no_train"
    if os.path.exists(os.path.join(folder, "ckpt.pt")):
        return "continue it with --resume without --no_train"
    if os.path.exists(os.path.join(folder, "best.pt")):
        return f"it has best.pt but no ckpt.pt to continue from: move {out_dir} aside to train it again"
    return f"{out_dir} has no checkpoint yet: train it again without --resume and without --no_train"


def train_time(log: list[dict]) -> tuple[list[dict], float, int]:
    """A run's log records -> (the validation curve with the training seconds before each point, the training
    wall seconds, how many of its processes were killed without a word). Each process (segment) starts with a
    header; its time is its closing 'done' record's wall_s, or, if it was killed (SIGKILL, a lost machine), the
    last 't' it logged: a lower bound (the steps after its last checkpoint were redone by the next segment)."""
    curve, wall, killed, seg_t, seg_done = [], 0.0, 0, None, None
    for rec in log + [{"config": None}]:  # a sentinel header closes the last segment
        if "config" in rec:
            if seg_t is not None:  # close the segment before this header
                wall += seg_done if seg_done is not None else seg_t
                killed += seg_done is None
            seg_t, seg_done = 0.0, None
            continue
        seg_t = rec.get("t", seg_t)
        if "done" in rec:
            seg_done = rec["wall_s"]
        elif "val_loss" in rec:
            curve.append({"step": rec["step"], "train_s": round(wall + seg_t, 1),
                          **{k: rec[k] for k in ("val_loss", "val_nll", "val_seq_acc", "val_tok_acc") if k in rec}})
    return curve, wall, killed


def main(argv: list[str]):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--resume", action="store_true", help="continue out/<config>_seed<seed> (a stopped row)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "star"))
    ap.add_argument("--no_train", action="store_true", help="evaluate the finished run in out/<config>_seed<seed>")
    ap.add_argument("--eval_args", default="", help="eval.py settings, e.g. --unmask=fixed or --gen_samples=64")
    ap.add_argument("--split", default="test", help="the split eval.py scores")
    ap.add_argument("--nproc", type=int, default=1, help="> 1: train with this many DDP ranks (train.py --nproc)")
    args = ap.parse_args(argv)
    if not os.path.isfile(os.path.join(ROOT, args.config)):
        sys.exit(f"error: config {args.config} not found (a path from the repo root, e.g. configs/ilm_star_easy.py)")
    name = os.path.basename(args.config).removesuffix(".py")
    out_dir = os.path.join("out", f"{name}_seed{args.seed}")
    ranks = [f"--nproc={args.nproc}"] if args.nproc > 1 else []
    cmd = [sys.executable, "train.py", args.config, f"--seed={args.seed}", f"--out_dir={out_dir}", *ranks]
    shown = " ".join(["python train.py", args.config, f"--seed={args.seed}", *ranks])
    path = os.path.join(args.out, f"{name}_seed{args.seed}.json")
    if os.path.exists(path) and not (args.no_train or args.resume):  # a new run never replaces a row unasked
        again = ", or re-evaluate it with --no_train" if os.path.exists(os.path.join(ROOT, out_dir, "ckpt.pt")) else ""
        sys.exit(f"error: {path} already holds this row; move it to bench/results/star_superseded/ (with a "
                 f"suffix saying what it was) to run it again{again}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):  # found out now, not after the training
        raise NanoError(f"--out={args.out} is a file, not a folder; choose another --out")
    os.makedirs(args.out, exist_ok=True)  # a folder that cannot be made: run_main's one line, before training
    if not args.no_train:
        r = subprocess.run(cmd + (["--resume"] if args.resume else []), cwd=ROOT)
        # Ctrl-C or SIGTERM to --nproc's launcher: the ranks saved, the launcher exits 128 + the signal; the log
        # below says where the run stopped
        if r.returncode not in (0, 128 + signal.SIGINT, 128 + signal.SIGTERM):
            sys.exit(f"error: training failed (exit {r.returncode}, its message is above); {next_step(out_dir)}")
    ckpt = os.path.join(out_dir, "ckpt.pt")
    if not os.path.exists(os.path.join(ROOT, out_dir, "log.jsonl")):
        first = f"move {path} to bench/results/star_superseded/ and train it" if os.path.exists(path) else \
            "train it first"
        sys.exit(f"error: no run in {out_dir} to evaluate; {first} (without --no_train)")
    with open(os.path.join(ROOT, out_dir, "log.jsonl")) as f:
        log = [json.loads(l) for l in f if l.strip()]
    done = max((r["done"] for r in log if "done" in r), default=0)
    planned = next(r for r in reversed(log) if "config" in r)["config"]["max_iters"]
    if done < planned:  # a stopped run (Ctrl-C, SIGTERM) exits 0 too: no row from half a run
        sys.exit(f"error: {out_dir} stopped at step {done} of {planned}; {next_step(out_dir)}")
    t1 = time.time()
    eval_cmd = ["eval.py", f"--ckpt={ckpt}", f"--split={args.split}", *args.eval_args.split()]
    if args.no_train or args.resume:  # a re-evaluation was asked for: it replaces this run's earlier results
        eval_cmd.insert(3, "--overwrite=True")
    if subprocess.run([sys.executable, *eval_cmd], cwd=ROOT).returncode:
        sys.exit(f"error: {' '.join(eval_cmd)} failed (its message is above); no row written")
    eval_s = time.time() - t1
    header = next(r for r in log if "config" in r)
    dataset = header["config"]["dataset"]
    with open(os.path.join(ROOT, out_dir, f"results_{results_name(ckpt, dataset, args.split)}.json")) as f:
        test = json.load(f)
    curve, wall, killed = train_time(log)
    headers = [rec for rec in log if "config" in rec]  # one per process that trained the run
    gits = " then ".join(dict.fromkeys(h.get("git") or "?" for h in headers))
    row = {"config": args.config, "name": name, "model": test["model"], "dataset": dataset, "seed": args.seed,
           "command": shown, "eval_command": "python " + " ".join(eval_cmd),
           "wall_s": round(wall, 1), "resumed": len(headers) > 1, "killed_segments": killed,  # > 0: wall_s is a
           "eval_s": round(eval_s, 1), "machine": machine(),                                 # lower bound
           "git": gits, "date": time.strftime("%Y-%m-%d"), "steps": test["step"],
           "split": args.split, "test_seq_acc": test.get("seq_acc"), "test_tok_acc": test.get("tok_acc"),
           "test_nll": test.get("nll"), "nll_kind": test.get("nll_kind"), "test_examples": test["examples"],
           "eval": {k: v for k, v in test.items() if k not in ("model_config", "ckpt")}, "curve": curve,
           "first_99": next(({"step": p["step"], "train_s": p["train_s"]} for p in curve  # the speedrun's clock
                             if (p.get("val_seq_acc") or 0) >= 0.99), None),
           "ranks": args.nproc, "threads": header.get("machine", {}).get("threads"),
           "segments": [{"from_step": h.get("resumed_at") or 0, "ranks": h.get("world_size", 1),  # each process
                         "threads": h.get("machine", {}).get("threads")} for h in headers]}       # layout it ran on
    with open(path, "w") as f:
        json.dump(row, f, indent=1)
    score = (f"{100 * row['test_seq_acc']:.2f} / {100 * row['test_tok_acc']:.2f}" if row["test_seq_acc"] is not None
             else f"nll {row['test_nll']}")
    print(f"{name} seed {args.seed}: {args.split} {score} in {'>= ' * bool(killed)}{wall / 60:.1f} min -> {path}")


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
