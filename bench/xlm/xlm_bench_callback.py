"""Lightning callback injected into XLM training via a Hydra override:

    +callbacks.xlm_bench._target_=xlm_bench_callback.BenchCallback
    +callbacks.xlm_bench.model_tag=ilm   (optional)
    +callbacks.xlm_bench.warmup_steps=5  (optional)

(with this folder on PYTHONPATH).  It times every optimizer step by the wall
clock between consecutive ``on_train_batch_end`` calls (so data loading,
forward/backward, optimizer, EMA and XLM's own callbacks are all included),
counts real (non-pad) tokens from ``batch["attention_mask"]`` and padded
tokens from ``batch["input_ids"].numel()``, and when training ends prints

    XLM_RESULT model=... steps=... startup_s=... steps_per_s=... tokens_per_s=...

(with XLM_BENCH_TORCH_PROFILE=<file.json>: torch.profiler's operator times of the steps after the warm-up
into that file, for bench/diag/profile_step.py --theirs), then hard-exits (os._exit) so that XLM's post-fit ``trainer.test(...)`` (which
would run the 5000-example test set incl. generation) is skipped.

startup_s = (start of the first training batch) - $XLM_BENCH_T0, where
XLM_BENCH_T0 is the epoch time stamped by the launcher just before it
exec's ``xlm``.  Requires accumulate_grad_batches == 1 (global_batch_size ==
per_device_batch_size) so that one batch == one optimizer step.
"""
import os
import resource
import sys
import time

from lightning import Callback


class BenchCallback(Callback):
    def __init__(self, model_tag: str = "xlm", warmup_steps: int = 5,
                 exit_after_train: bool = True, save_state_dict: str = ""):
        super().__init__()
        self.save_state_dict = save_state_dict
        self.model_tag = model_tag
        self.warmup_steps = int(warmup_steps)
        self.exit_after_train = exit_after_train
        self.t0 = float(os.environ.get("XLM_BENCH_T0", time.time()))
        self.t_first_start = None
        self.t_ends = []
        self.cpu_ends = []
        self.real_tokens = []
        self.padded_tokens = []
        self.shapes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.t_first_start is None:
            self.t_first_start = time.time()
        if (os.environ.get("XLM_BENCH_PROFILE") and batch_idx == self.warmup_steps
                and not hasattr(self, "_prof")):
            import cProfile
            self._prof = cProfile.Profile()
            self._prof.enable()
        if (os.environ.get("XLM_BENCH_TORCH_PROFILE") and batch_idx == self.warmup_steps
                and not hasattr(self, "_tprof")):  # operator times, as bench/diag/profile_step.py takes ours
            import torch
            self._tprof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._tprof.__enter__()
            self._tprof_t, self._tprof_from = time.perf_counter(), batch_idx
        am = batch.get("attention_mask") if isinstance(batch, dict) else None
        ids = batch.get("input_ids") if isinstance(batch, dict) else None
        if am is not None:
            self.real_tokens.append(int(am.sum().item()))
        elif ids is not None:
            self.real_tokens.append(int(ids.numel()))
        else:
            self.real_tokens.append(0)
        self.padded_tokens.append(int(ids.numel()) if ids is not None else 0)
        if ids is not None and len(self.shapes) < 3:
            self.shapes.append(tuple(ids.shape))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.t_ends.append(time.time())
        self.cpu_ends.append(time.process_time())

    def on_train_end(self, trainer, pl_module):
        n = len(self.t_ends)
        w = min(self.warmup_steps, max(n - 2, 0))
        # steps w+1 .. n-1 (0-based) measured between end of step w and end of step n-1
        dt = self.t_ends[-1] - self.t_ends[w] if n > 1 else float("nan")
        steps = n - 1 - w
        sps = steps / dt if dt and dt > 0 else float("nan")
        real = sum(self.real_tokens[w + 1:n])
        padded = sum(self.padded_tokens[w + 1:n])
        tps = real / dt if dt and dt > 0 else float("nan")
        ptps = padded / dt if dt and dt > 0 else float("nan")
        cpu = self.cpu_ends[-1] - self.cpu_ends[w] if n > 1 else float("nan")
        cpu_per_step = cpu / steps if steps > 0 else float("nan")
        startup = (self.t_first_start - self.t0) if self.t_first_start else float("nan")
        first_step = (self.t_ends[0] - self.t_first_start) if n else float("nan")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        child_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        nparams = sum(p.numel() for p in pl_module.model.parameters())
        cfg_bs = self.shapes[0][0] if self.shapes else -1
        line = (
            f"XLM_RESULT model={self.model_tag} steps={n} measured_steps={steps} "
            f"batch={cfg_bs} seq_shape={self.shapes[0] if self.shapes else None} "
            f"params={nparams} startup_s={startup:.2f} first_step_s={first_step:.3f} "
            f"steps_per_s={sps:.3f} tokens_per_s={tps:.1f} padded_tokens_per_s={ptps:.1f} "
            f"mean_real_tokens_per_batch={real / max(steps, 1):.1f} "
            f"cpu_s_per_step={cpu_per_step:.4f} wall_s_per_step={(dt / steps if steps > 0 else float('nan')):.4f} "
            f"peak_rss_mb={rss_mb:.0f} peak_child_rss_mb={child_rss_mb:.0f} "
            f"torch_threads={__import__('torch').get_num_threads()}"
        ).replace(" ", " ")
        line = line.replace("seq_shape=(", "seq_shape=").replace(") params", " params").replace(", ", "x")
        print(line, flush=True)
        if hasattr(self, "_tprof"):
            import json
            wall, n_prof = time.perf_counter() - self._tprof_t, n - self._tprof_from
            self._tprof.__exit__(None, None, None)
            events = self._tprof.key_averages()
            top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
            with open(os.environ["XLM_BENCH_TORCH_PROFILE"], "w") as f:
                json.dump({"steps_profiled": n_prof, "step_ms_profiled": round(1e3 * wall / n_prof, 2),
                           "torch_ops_ms": round(sum(e.self_cpu_time_total for e in events) / 1e3 / n_prof, 2),
                           "ops_per_step": sum(e.count for e in events) // n_prof,
                           "top_ops": [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / n_prof, 3),
                                        "calls_per_step": e.count // n_prof} for e in top]}, f, indent=1)
        if hasattr(self, "_prof"):
            import pstats
            self._prof.disable()
            with open(os.environ["XLM_BENCH_PROFILE"], "w") as f:
                pstats.Stats(self._prof, stream=f).sort_stats("cumulative").print_stats(60)
                pstats.Stats(self._prof, stream=f).sort_stats("tottime").print_stats(40)
        sys.stdout.flush()
        sys.stderr.flush()
        if self.save_state_dict:
            import torch
            torch.save(pl_module.model.state_dict(), self.save_state_dict)
            print(f"saved model state_dict to {self.save_state_dict}", flush=True)
        if self.exit_after_train:
            os._exit(0)
