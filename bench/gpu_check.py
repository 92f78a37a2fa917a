"""
Everything that needs a GPU, in one run of under 10 minutes (bench/gpu_check.sh calls this):
  1. every model trains on star_easy with bf16 autocast and torch.compile, is stopped (SIGTERM) a tenth of the
     way and resumed, then samples (sample.py) and evaluates (eval.py);
  2. a run is SIGKILLed and resumed from its last checkpoint;
  3. torchrun over all GPUs (NCCL) trains and resumes on one process;
  4. a 12-layer/768, LM-shaped ARLM (GPT-2 small: vocab 50304, 1024 tokens) measures training throughput and
     MFU against the bf16 matmul peak measured in the same run.
Writes bench/results/gpu_check_<gpu name>.json and prints a table. On a CPU, `--device=cpu --small` runs the
same steps tiny and uncompiled (a check of this script, not of a GPU).

    bash bench/gpu_check.sh
    python bench/gpu_check.py --device=cpu --small          # smoke test of the script itself
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# every model file with a star_easy config (as the engine finds models: nothing to register)
MODELS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "models"))
                if f.endswith(".py") and os.path.exists(os.path.join(ROOT, "configs", f"{f[:-3]}_star_easy.py")))


def run(cmd: list[str], timeout: float = 300, env=None) -> tuple[int, str, float]:
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:  # a hang is a failed check, not a lost report
        return 124, f"timed out after {timeout:.0f} s: {' '.join(cmd)}\n{(e.stdout or b'')[-1000:]!r}", time.time() - t0
    return r.returncode, (r.stdout + r.stderr)[-1500:], time.time() - t0


def last_step(out_dir: str) -> int:
    path = os.path.join(ROOT, out_dir, "ckpt.pt")
    return torch.load(path, weights_only=True)["step"] if os.path.exists(path) else -1


def logged(out_dir: str, key: str) -> list:
    path = os.path.join(ROOT, out_dir, "log.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [r for r in map(json.loads, f) if key in r]


def stop_halfway(cmd: list[str], out_dir: str, at_step: int, sig=signal.SIGTERM, timeout: float = 300) -> dict:
    """Start a run, send `sig` once its log passes at_step, and report how it ended."""
    shutil.rmtree(os.path.join(ROOT, out_dir), ignore_errors=True)  # an old log would trip the signal at once
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < timeout:
        if any(r["step"] >= at_step for r in logged(out_dir, "loss")):
            p.send_signal(sig)
            break
        time.sleep(0.01)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out = "timed out: " + (p.communicate()[0] or "")
    return {"rc": p.returncode, "seconds": round(time.time() - t0, 1), "ckpt_step": last_step(out_dir),
            "tail": out[-600:]}


def model_check(model: str, args, base: list[str]) -> dict:
    out = f"out/gpu_check/{model}"
    cmd = [sys.executable, "train.py", f"configs/{model}_star_easy.py", f"--out_dir={out}", "--overwrite=True",
           f"--max_iters={args.steps}", f"--eval_interval={args.steps // 2}", "--eval_gen_examples=100", *base]
    r = {"first": stop_halfway(cmd, out, args.steps // 10)}
    r["resume_rc"], tail, r["resume_s"] = run([c for c in cmd if c != "--overwrite=True"] + ["--resume"])
    r["final_step"] = last_step(out)
    r["losses"] = [round(x["loss"], 4) for x in logged(out, "loss")][:: max(1, args.steps // 20)]
    r["val"] = logged(out, "val_loss")[-1:] or None
    rc, s_tail, _ = run([sys.executable, "sample.py", f"--ckpt={out}/ckpt.pt", "--num_samples=3", f"--device={args.device}"])
    r["sample_rc"], r["sample_tail"] = rc, s_tail[-300:]
    rc, e_tail, _ = run([sys.executable, "eval.py", f"--ckpt={out}/ckpt.pt", "--split=test", "--max_examples=500",
                         f"--device={args.device}"])
    r["eval_rc"], r["eval_tail"] = rc, e_tail[-300:]
    r["ok"] = r["first"]["rc"] == 0 and 0 < r["first"]["ckpt_step"] < args.steps and r["resume_rc"] == 0 and \
        r["final_step"] == args.steps and r["sample_rc"] == 0 and r["eval_rc"] == 0
    if not r["ok"]:
        r["resume_tail"] = tail
    return r


def kill_check(args, base: list[str]) -> dict:
    out = "out/gpu_check/killed"
    cmd = [sys.executable, "train.py", "configs/arlm_star_easy.py", f"--out_dir={out}", "--overwrite=True",
           f"--max_iters={args.steps}", f"--ckpt_interval={max(1, args.steps // 10)}", *base]
    first = stop_halfway(cmd, out, args.steps // 3, sig=signal.SIGKILL)
    rc, tail, _ = run([c for c in cmd if c != "--overwrite=True"] + ["--resume"])
    return {"killed_at_ckpt_step": first["ckpt_step"], "resume_rc": rc, "final_step": last_step(out),
            "ok": first["ckpt_step"] > 0 and rc == 0 and last_step(out) == args.steps, "tail": tail[-400:]}


def ddp_check(args, base: list[str]) -> dict:
    n = max(1, torch.cuda.device_count()) if args.device.startswith("cuda") else 2
    out = "out/gpu_check/ddp"
    shutil.rmtree(os.path.join(ROOT, out), ignore_errors=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "train.py",
           "configs/arlm_star_easy.py", f"--out_dir={out}", "--overwrite=True", f"--max_iters={args.steps}",
           f"--eval_interval={args.steps}", "--ema_decay=0.99", *base]
    rc, tail, seconds = run(cmd)
    rc2, tail2, _ = run([sys.executable, "train.py", "configs/arlm_star_easy.py", f"--out_dir={out}", "--resume",
                         f"--max_iters={args.steps + 10}", f"--eval_interval={args.steps}", "--ema_decay=0.99", *base])
    return {"processes": n, "rc": rc, "seconds": round(seconds, 1), "resume_on_one_rc": rc2,
            "final_step": last_step(out), "ok": rc == 0 and rc2 == 0 and last_step(out) == args.steps + 10,
            "tail": (tail if rc else tail2)[-400:]}


def matmul_peak(device: str, dtype, n: int) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, t0 = 20, time.time()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.time() - t0)


def sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def lm_throughput(args) -> dict:
    """GPT-2-small-shaped ARLM through the model file's own loss; FLOPs = 6 N per token + attention
    (12 L T d per token, as in nanoGPT's estimate_mfu)."""
    from models.arlm import Config, Model
    small = args.small
    L, d, H, T, V, B = (2, 128, 2, 128, 512, 4) if small else (12, 768, 12, 1024, 50304, 16)
    dev, amp = args.device, args.device.startswith("cuda")
    torch.manual_seed(0)
    model = Model(Config(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=d)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=amp)
    step_fn = torch.compile(model) if args.compile else model
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
    x = torch.randint(V, (B, T), device=dev)
    batch = model.collate(x, torch.zeros(B, dtype=torch.long, device=dev))

    def step():
        with ctx:
            loss, _ = step_fn(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.time()
    for _ in range(3):
        step()  # warm-up and compilation, left out of the timing
    sync(dev)
    warm = time.time() - t0
    n, t0 = (3 if small else 20), time.time()
    for _ in range(n):
        step()
    sync(dev)
    dt = (time.time() - t0) / n
    n_params = sum(p.numel() for p in model.parameters())
    flops = (6 * n_params + 12 * L * T * d) * B * T / dt
    peak = matmul_peak(dev, torch.bfloat16 if amp else torch.float32, 1024 if small else 8192)
    return {"shape": f"{L}L/{d}, vocab {V}, {B}x{T} tokens", "params": n_params, "compile": args.compile,
            "step_ms": round(1000 * dt, 2), "tokens_s": round(B * T / dt), "warmup_s": round(warm, 1),
            "model_tflops": round(flops / 1e12, 2), "matmul_peak_tflops": round(peak / 1e12, 2),
            "mfu": round(flops / peak, 3), "ok": True,
            "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if amp else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny and uncompiled: a CPU check of this script")
    ap.add_argument("--steps", type=int, default=0, help="training steps per check (default 1000, 100 with --small)")
    ap.add_argument("--deadline", type=float, default=540, help="seconds; later sections are skipped, not lost")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out, e.g. lm_throughput")
    ap.add_argument("--out", default="", help="report path (default bench/results/gpu_check_<gpu>.json)")
    args = ap.parse_args()
    args.compile = not args.small
    args.steps = args.steps or (100 if args.small else 1000)
    if not os.path.exists(os.path.join(ROOT, "data", "star", "easy", "meta.json")):
        subprocess.run([sys.executable, "data/star/prepare.py"], cwd=ROOT, check=True)
    base = [f"--device={args.device}", f"--compile={args.compile}", "--log_interval=1"]  # the signals watch the log
    if args.small:
        base += ["--n_layer=1", "--n_embd=32", "--n_head=2", "--batch_size=16", "--eval_examples=64",
                 "--eval_gen_examples=16"]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    report = {"device": gpu, "gpus": torch.cuda.device_count(), "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d %H:%M"), "small": args.small, "steps": args.steps,
              "command": " ".join(sys.argv)}
    path = args.out or os.path.join(ROOT, "bench", "results", f"gpu_check_{gpu.replace(' ', '_')}.json")
    t0 = time.time()
    sections = [("lm_throughput", lambda: lm_throughput(args)),
                *((f"model_{m}", lambda m=m: model_check(m, args, base)) for m in MODELS),
                ("kill_resume", lambda: kill_check(args, base)), ("ddp", lambda: ddp_check(args, base))]
    skip = set(filter(None, args.skip.split(",")))
    if skip - {n for n, _ in sections}:
        sys.exit(f"error: --skip={args.skip}: sections are {', '.join(n for n, _ in sections)}")
    sections = [(n, c) for n, c in sections if n not in skip]
    for name, check in sections:  # each section is written as it ends, so a killed lease keeps what ran
        if time.time() - t0 > args.deadline:
            report[name] = {"ok": False, "skipped": f"past the {args.deadline:.0f} s deadline"}
        else:
            t1 = time.time()
            try:
                report[name] = check()
            except Exception as e:  # one broken section must not lose the others' results
                report[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[-1500:]}
            report[name]["section_s"] = round(time.time() - t1, 1)
        print(f"{name:<16} {str(report[name].get('ok', '')):<5} {report[name].get('section_s', '-')} s", flush=True)
        report["seconds"] = round(time.time() - t0, 1)
        report["ok"] = all(report[n].get("ok", True) for n, _ in sections if n in report) and \
            len([n for n, _ in sections if n in report]) == len(sections)
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    for m in MODELS:
        r = report.get(f"model_{m}", {})
        if "first" in r:
            print(f"{m + ' bf16+compile':<22} {str(r['ok']):<5} stopped at {r['first']['ckpt_step']}, resumed to "
                  f"{r['final_step']} ({r['resume_s']:.0f} s); last val {r['val']}")
    if "killed_at_ckpt_step" in report.get("kill_resume", {}):
        print(f"{'SIGKILL + resume':<22} {str(report['kill_resume']['ok']):<5} killed at checkpoint step "
              f"{report['kill_resume']['killed_at_ckpt_step']}")
    if "processes" in report.get("ddp", {}):
        print(f"{'torchrun':<22} {str(report['ddp']['ok']):<5} {report['ddp']['processes']} processes")
    t = report.get("lm_throughput", {})
    if "tokens_s" in t:
        print(f"{'LM throughput':<22} {'':<5} {t['shape']}: {t['tokens_s']:,} tokens/s, {t['model_tflops']} TFLOP/s, "
              f"MFU {t['mfu']:.1%} of the measured {t['matmul_peak_tflops']} TFLOP/s matmul peak")
    print(f"all ok: {report['ok']} in {report['seconds']:.0f} s -> {path}")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
