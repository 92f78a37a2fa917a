"""
LM1B (the One Billion Word benchmark, Chelba et al. 2013) with the GPT-2 tokenizer, one sentence per row as
in MDLM / ILM / XLM: `bos + sentence + eos`, padded (or cut) to 128 tokens.

    python data/lm1b/prepare.py                   # hub -> data/lm1b/{train,val,test}.bin + meta.json (rows)
    python data/lm1b/prepare.py --stream          # packed stream layout instead -> data/lm1b/stream/
    python data/lm1b/prepare.py --data_files sents.txt --out /tmp/lm1b   # local .txt/.json/.jsonl/.parquet

Source: the hub dataset billion-word-benchmark/lm1b (the repo MDLM loads as 'lm1b'; XLM names it in full):
30,301,028 train and 306,688 test sentences. Its main branch holds a loading script, which datasets>=4
refuses, so we read the hub's automatic parquet export of it (revision refs/convert/parquet); the row
counts are checked. val: 0.1% of train (30,302 sentences) carved with seed 2357; test: LM1B's own.

Text: LM1B's sentences are space-tokenised ("It 's here , he said ."). As SEDD, MDLM and XLM do before
their tokenizers, we undo that with the same detokenizer rules (--no-detok keeps the text as it is).
(Those papers tokenise LM1B with bert-base-uncased; we use GPT-2 BPE, so our numbers are not theirs.)

Special ids: GPT-2 has one special token, <|endoftext|> = 50256, which is both bos and eos (GPT-2's
convention); rows also need a pad, which takes the new id 50257, so vocab_size = 50258 (models take their
mask past that). A sentence longer than 126 tokens keeps its first 126 and still ends in eos (MDLM does the
same), so every row is bos, text, eos, pads. The script prints the length distribution and how many
sentences were cut. The --stream layout has no pad: vocab_size 50257, each sentence followed by eos.
"""
import argparse
import os
import re
import sys

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402

EOS = 50256          # GPT-2's <|endoftext|>: bos and eos
PAD = 50257          # one id past GPT-2's vocabulary
HUB_ROWS = {"train": 30_301_028, "test": 306_688}
DOWNLOAD = ("about 1.8 GB to download (the hub card's download_size), ~4.3 GB in datasets' cache, ~7.7 GB "
            "more for train.bin (approximate)")


def detokenize(x: str) -> str:
    """Undo LM1B's space tokenisation (the lm1b detokenizer rules of SEDD / MDLM / XLM)."""
    x = x.replace("http : / / ", "http://").replace("https : / / ", "https://")
    x = re.sub(r" '(\w+)", r"'\1", x)          # they 've -> they've, John 's -> John's
    x = re.sub(r" (\w+) \. ", r" \1. ", x)      # word . -> word.
    x = re.sub(r" (\w+) \.$", r" \1.", x)
    x = x.replace(" ? ", "? ")
    x = re.sub(r" \?$", "?", x)
    x = x.replace(" ! ", "! ")
    x = re.sub(r" \!$", "!", x)
    x = x.replace(" , ", ", ").replace(" : ", ": ").replace(" ; ", "; ").replace(" / ", "/")
    x = re.sub(r"\" ([^\"]+) \"", r'"\1"', x)   # " quoted " -> "quoted"
    x = re.sub(r"' ([^']+) '", r"'\1'", x)
    x = re.sub(r"\( ([^()]+) \)", r"(\1)", x)
    x = re.sub(r"\[ ([^\[\]]+) \]", r"[\1]", x)
    return x.replace("$ ", "$").replace("£ ", "£")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    prep_utils.add_source_args(parser, dataset="billion-word-benchmark/lm1b", revision="refs/convert/parquet")
    parser.add_argument("--stream", action="store_true", help="write the packed stream layout instead of rows")
    parser.add_argument("--row_width", type=int, default=128, help="rows layout: tokens per row (default 128)")
    parser.add_argument("--val_size", type=prep_utils.size_arg, default=0.001,
                        help="val carved from train: a fraction, or a number of sentences (default %(default)s)")
    parser.add_argument("--detok", action=argparse.BooleanOptionalAction, default=True,
                        help="undo LM1B's space tokenisation before BPE (default on)")
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.out or (os.path.join(here, "stream") if args.stream else here)

    if not args.data_files and args.dataset == parser.get_default("dataset"):  # said before it starts
        print(f"{args.dataset} from the Hugging Face hub: {DOWNLOAD}; offline, use --data_files")
    dsd = prep_utils.load_text(args)
    print("loaded: " + ", ".join(f"{k} {len(v):,} sentences" for k, v in dsd.items()))
    if not args.data_files and any(len(dsd[k]) != n for k, n in HUB_ROWS.items() if k in dsd):
        print(f"WARNING: LM1B has {HUB_ROWS} sentences; this copy differs (a partial parquet export?)")
    dsd = prep_utils.make_splits(dsd, args.val_size, seed=2357)
    tok = prep_utils.tokenize(dsd, args.text_column, args.num_proc, preprocess=detokenize if args.detok else None)
    if args.stream:
        meta = prep_utils.write_gpt2_splits(out, tok, name="lm1b_stream", layout="stream", vocab_size=50257,
                                            bos=EOS, eos=EOS, pad=None)
    else:
        meta = prep_utils.write_gpt2_splits(out, tok, name="lm1b", layout="rows", vocab_size=50258,
                                            bos=EOS, eos=EOS, pad=PAD, width=args.row_width)
    print(f"wrote {out}: " + ", ".join(f"{s} {c['tokens']:,} tokens" for s, c in meta["splits"].items()))
    return meta


if __name__ == "__main__":
    from engine import run_main  # a full disk or bad input: one line, not a traceback
    run_main(main, sys.argv[1:])

# Expected output (hub, rows; download ~1.8 GB, then tokenising with 8 processes takes minutes):
# loaded: train 30,301,028 sentences, test 306,688 sentences
# train: 30,270,726 texts -> 3,874,652,928 tokens in .../data/lm1b/train.bin
#   tokens per text: mean ..., p50 ..., p90 ..., p99 ..., p99.9 ..., max ...; truncated to fit 128 (with bos/eos): ...
# val: 30,302 texts -> 3,878,656 tokens in .../data/lm1b/val.bin
# test: 306,688 texts -> 39,256,064 tokens in .../data/lm1b/test.bin
# (rows x 128; train.bin is about 7.7 GB as uint16. Not run against the hub here: the counts follow from
#  LM1B's published sizes, the length figures depend on the data.)
