"""
Where a star-graph model goes wrong, from the predictions eval.py wrote: how many outputs are wrong, whether
they are shorter or longer than the path, the sequence accuracy per path length, and the first position
where a wrong output leaves the true path (position 1 = the first hop from the source into an arm, the
choice an autoregressive model has to make before it has seen where the arms lead).

    python bench/diag/star_errors.py out/arlm_star_medium_seed1337/predictions_star-medium_test.jsonl
    python bench/diag/star_errors.py <predictions.jsonl> --row=bench/results/star/arlm_star_medium_seed1337.json

--row adds the analysis to that results row as "error_analysis" (with the command that made it).
"""
import argparse
import collections
import json
import os
import sys


def analyse(path: str) -> dict:
    rows = [json.loads(line) for line in open(path)]
    wrong = [r for r in rows if not r["correct"]]
    by_len, first, lengths = collections.defaultdict(list), collections.Counter(), collections.Counter()
    for r in rows:
        by_len[len(r["truth"].split())].append(r["correct"])
    for r in wrong:
        out, truth = r["text"].split(), r["truth"].split()
        lengths["shorter" if len(out) < len(truth) else "longer" if len(out) > len(truth) else "same_length"] += 1
        first[next((i for i, (a, b) in enumerate(zip(out, truth)) if a != b), min(len(out), len(truth)))] += 1
    return {"from": path, "examples": len(rows), "wrong": len(wrong), "wrong_by_output_length": dict(lengths),
            "seq_acc_by_target_length": {str(n): {"acc": round(sum(c) / len(c), 4), "n": len(c)}
                                         for n, c in sorted(by_len.items())},
            "first_wrong_position": {str(k): v for k, v in sorted(first.items())}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", help="a predictions_<dataset>_<split>.jsonl that eval.py wrote")
    ap.add_argument("--row", help="a results row JSON (bench/star_row.py) to add the analysis to")
    args = ap.parse_args()
    if not os.path.exists(args.predictions):
        sys.exit(f"{args.predictions} not found: run python eval.py --ckpt=<run>/ckpt.pt --split=test first")
    a = analyse(args.predictions)
    print(json.dumps(a, indent=1))
    if args.row:
        if not os.path.exists(args.row):
            sys.exit(f"--row={args.row} not found")
        with open(args.row) as f:
            row = json.load(f)
        row["error_analysis"] = {**a, "command": "python " + " ".join(sys.argv)}
        with open(args.row + ".tmp", "w") as f:
            json.dump(row, f, indent=1)
        os.replace(args.row + ".tmp", args.row)
        print(f"-> {args.row}")


if __name__ == "__main__":
    main()
