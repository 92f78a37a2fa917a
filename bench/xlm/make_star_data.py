"""Generate the XLM star-graph datasets locally (the HF hub is unreachable here).

Uses the peer package's own generator classes and settings
(xlm/commands/generate_star_graphs.py: STAR_EASY/MEDIUM/HARD, SIZES, seed 42),
and writes each split as a parquet file under

    <root>/dhruveshpatel/<name>/{train,validation,test}.parquet

where <name> is star-small (easy), star-medium, star-hard.  XLM's
DatasetManager calls ``datasets.load_dataset("dhruveshpatel/<name>", split=...)``
(leading '/' stripped), and ``datasets`` resolves that *relative* path to the
local directory first when the current working directory is <root>.  So running
``xlm job_type=prepare_data ...`` (or train) with cwd=<root> goes through XLM's
normal download->preprocess->save_to_disk(manual cache under $DATA_DIR) code
path, reading these local files instead of the hub.

Usage (inside the xlm venv):
    python make_star_data.py --root /work/main/bench/.work/xlm_run [--which easy medium hard]
"""
import argparse
import os
import sys
from pathlib import Path

# generate_star_graphs.py seeds at import time (seed_everything_simple(42)) and
# calls dotenv; import it from a neutral cwd.
from xlm.commands import generate_star_graphs as g  # noqa: E402
import datasets  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--which", nargs="+", default=["easy"])
    ap.add_argument("--train-size", type=int, default=g.SIZES["train"])
    args = ap.parse_args()
    settings = {"easy": g.STAR_EASY, "medium": g.STAR_MEDIUM, "hard": g.STAR_HARD}
    sizes = dict(g.SIZES)
    sizes["train"] = args.train_size
    for w in args.which:
        s = settings[w]
        # same seed as their script so easy matches a fresh run of their
        # generate_star_graphs.py (which seeds once, then does easy,medium,hard)
        g.seed_everything_simple(42)
        out = Path(args.root) / "dhruveshpatel" / s["name"]
        out.mkdir(parents=True, exist_ok=True)
        for split, size in sizes.items():
            gen = s["constructor"](count=size, **s["kwargs"])
            ds = datasets.Dataset.from_generator(
                gen.graphs, keep_in_memory=True, num_proc=1
            )
            ds.to_parquet(str(out / f"{split}.parquet"))
            print(f"wrote {out}/{split}.parquet rows={len(ds)} example={ds[0]}")


if __name__ == "__main__":
    main()
