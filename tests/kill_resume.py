"""
Crash safety: kill training with SIGKILL at random moments (checkpoint writes included), resume each
time, and check that no checkpoint is ever unreadable and that the final weights are bit-identical to an
uninterrupted run with the same seed.

    python tests/kill_resume.py --kills=20          # the full check (a few minutes); prints a table
    python -m pytest tests/test_crash.py -q         # the short version in the suite

Everything runs with one thread (OMP_NUM_THREADS=1) so that float reductions happen in the same order.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train_cmd(data_dir: str, out_dir: str, max_iters: int, resume: bool) -> list[str]:
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--dataset={data_dir}", f"--out_dir={out_dir}",
            f"--max_iters={max_iters}", "--model=arlm", "--ckpt_interval=1", "--eval_interval=7", "--n_layer=1",
            "--n_head=2", "--n_embd=32", "--batch_size=16", "--eval_examples=16", "--eval_gen_examples=8",
            "--eval_batch_size=16", "--dropout=0.1", "--ema_decay=0.9", "--warmup_iters=3"] + (
        ["--resume"] if resume else [])


def start_process(cmd: list[str]):
    """A training process: `cmd` in a new interpreter (stdout and stderr discarded) -> its Popen."""
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(p):
    if p.wait() != 0:
        raise RuntimeError(f"training exited with status {p.returncode}")


def run_with_kills(data_dir: str, work: str, kills: int, max_iters: int, seed: int = 0, start=start_process,
                   kill_after: tuple[float, float] = (1.5, 4.0)) -> dict:
    """start(cmd) -> a process object with send_signal and wait (tests/test_crash.py passes forks of pytest);
    each kill comes after a time drawn uniformly from kill_after (seconds)."""
    rng = random.Random(seed)
    ref, victim = os.path.join(work, "reference"), os.path.join(work, "killed")
    finish(start(train_cmd(data_dir, ref, max_iters, False)))
    ckpt = os.path.join(victim, "ckpt.pt")
    steps_at_kill, unreadable = [], 0
    for _ in range(kills):
        p = start(train_cmd(data_dir, victim, max_iters, os.path.exists(ckpt)))
        time.sleep(rng.uniform(*kill_after))  # a new interpreter starts in ~1-2 s; the rest lands anywhere in the loop
        p.send_signal(signal.SIGKILL)
        p.wait()
        if os.path.exists(ckpt):
            try:
                steps_at_kill.append(torch.load(ckpt, weights_only=True)["step"])
            except Exception:
                unreadable += 1
        if steps_at_kill and steps_at_kill[-1] >= max_iters:
            break
    if not steps_at_kill or steps_at_kill[-1] < max_iters:  # finish the run (a finished one refuses --resume)
        finish(start(train_cmd(data_dir, victim, max_iters, os.path.exists(ckpt))))
    a = torch.load(os.path.join(ref, "ckpt.pt"), weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    same = all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]) and \
        all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    return {"kills": len(steps_at_kill) + unreadable, "steps_at_kill": steps_at_kill, "unreadable": unreadable,
            "final_step": b["step"], "bit_identical": same}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--max_iters", type=int, default=400)
    ap.add_argument("--work", default="/tmp/nanoxlm_kill_resume")
    args = ap.parse_args()
    from data.star.prepare import write_task
    data_dir = os.path.join(args.work, "data")
    write_task("easy", data_dir, {"train": 2048, "val": 64, "test": 64}, seed=0)
    import shutil
    for d in ("reference", "killed"):
        shutil.rmtree(os.path.join(args.work, d), ignore_errors=True)
    r = run_with_kills(data_dir, args.work, args.kills, args.max_iters)
    print(f"kills {r['kills']} | checkpoint step after each kill {r['steps_at_kill']} | unreadable {r['unreadable']} "
          f"| final step {r['final_step']} | bit-identical to the uninterrupted run: {r['bit_identical']}")
    sys.exit(0 if r["bit_identical"] and not r["unreadable"] else 1)
