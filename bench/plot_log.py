"""
Plot a run's curves from its log.jsonl: training loss and, at each evaluation, validation loss / NLL and
sequence accuracy. Needs matplotlib (optional: `pip install matplotlib`); without it, prints the curve.

    python bench/plot_log.py out/ilm_star_easy            # writes out/ilm_star_easy/curves.png
    python bench/plot_log.py out/a out/b --out=ab.png      # several runs on one figure
"""
import json
import os
import sys


def read(run: str) -> tuple[list, list]:
    path = run if run.endswith(".jsonl") else os.path.join(run, "log.jsonl")
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found (a run writes out_dir/log.jsonl)")
    with open(path) as f:
        records = [json.loads(l) for l in f if l.strip()]
    return [r for r in records if "loss" in r and "step" in r], [r for r in records if "val_loss" in r]


def main(argv: list[str]):
    runs = [a for a in argv if not a.startswith("--")]
    out = next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), None)
    if not runs:
        sys.exit(__doc__)
    data = {run: read(run) for run in runs}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (`pip install matplotlib` for a figure); the curves as text:")
        for run, (train, evals) in data.items():
            print(run)
            for r in evals:
                print("  " + " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for run, (train, evals) in data.items():
        name = os.path.basename(os.path.normpath(run))
        ax1.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.6, label=f"{name} train")
        ax1.plot([r["step"] for r in evals], [r.get("val_nll", r["val_loss"]) for r in evals], "o-", ms=3,
                 label=f"{name} val {'nll' if evals and 'val_nll' in evals[0] else 'loss'}")
        if evals and "val_seq_acc" in evals[0]:
            ax2.plot([r["step"] for r in evals], [r["val_seq_acc"] for r in evals], "o-", ms=3, label=f"{name} seq")
            ax2.plot([r["step"] for r in evals], [r["val_tok_acc"] for r in evals], "--", label=f"{name} tok")
    ax1.set(xlabel="step", ylabel="loss", yscale="log")
    ax2.set(xlabel="step", ylabel="val accuracy", ylim=(0, 1))
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    out = out or os.path.join(runs[0] if not runs[0].endswith(".jsonl") else os.path.dirname(runs[0]), "curves.png")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"-> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
