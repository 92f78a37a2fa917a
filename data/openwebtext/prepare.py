"""
OpenWebText with the GPT-2 tokenizer, the nanoGPT recipe: every document's ids followed by eos (50256),
all concatenated into one stream (uint16).

    python data/openwebtext/prepare.py                 # hub -> data/openwebtext/{train,val,test}.bin + meta.json
    python data/openwebtext/prepare.py --data_files owt.jsonl --out /tmp/owt   # local .txt/.json/.jsonl/.parquet

Source: the hub dataset Skylion007/openwebtext (nanoGPT's 'openwebtext'), 8,013,769 documents in one train
split; about 54 GB of disk for the download and datasets' cache, ~17 GB for train.bin.
Its main branch held a loading script, which datasets>=4 refuses (a hub PR replaces it with parquet files);
if you hit that, the error says what to do. Don't use --revision refs/convert/parquet here: the hub's
automatic export only covers the first ~5 GB of a dataset this big.

Splits: val is carved by nanoGPT's very call (train_test_split(test_size=0.0005, seed=2357): 4,007
documents), so it is nanoGPT's val as long as the hub copy keeps the original row order; test is a second holdout of the same size from the rest (same seed),
which leaves train = nanoGPT's train less those 4,007 documents.
Special ids: eos = bos = 50256 (GPT-2's <|endoftext|>), no pad, vocab_size 50257.
"""
import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402

EOS = 50256  # GPT-2's <|endoftext|>
DOWNLOAD = ("about 54 GB of disk for the download and datasets' cache (the hub card: ~13 GB of archives "
            "holding ~8M documents, ~40 GB once read), ~17 GB more for train.bin (approximate)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    prep_utils.add_source_args(parser, dataset="Skylion007/openwebtext")
    parser.add_argument("--val_size", type=prep_utils.size_arg, default=0.0005,
                        help="val (and test) held out of train: a fraction, or a number of documents "
                             "(default %(default)s, nanoGPT's)")
    args = parser.parse_args(argv)
    out = args.out or os.path.dirname(os.path.abspath(__file__))

    if not args.data_files and args.dataset == parser.get_default("dataset"):  # said before it starts
        print(f"{args.dataset} from the Hugging Face hub: {DOWNLOAD}; offline, use --data_files")
    dsd = prep_utils.load_text(args)
    print("loaded: " + ", ".join(f"{k} {len(v):,} documents" for k, v in dsd.items()))
    dsd = prep_utils.make_splits(dsd, args.val_size, seed=2357)
    tok = prep_utils.tokenize(dsd, args.text_column, args.num_proc)
    meta = prep_utils.write_gpt2_splits(out, tok, name="openwebtext", layout="stream", vocab_size=50257,
                                        bos=EOS, eos=EOS, pad=None)
    print(f"wrote {out}: " + ", ".join(f"{s} {c['tokens']:,} tokens" for s, c in meta["splits"].items()))
    return meta


if __name__ == "__main__":
    from engine import run_main  # a full disk or bad input: one line, not a traceback
    run_main(main, sys.argv[1:])

# Expected output (hub; hours of download and tokenising on 8 processes):
# loaded: train 8,013,769 documents
# train: 8,005,755 texts -> about 9.03B tokens in .../data/openwebtext/train.bin
# val: 4,007 texts -> about 4.4M tokens in .../data/openwebtext/val.bin   (nanoGPT's val.bin: 4,434,897)
# test: 4,007 texts -> about 4.4M tokens in .../data/openwebtext/test.bin
# (nanoGPT's train.bin holds 9,035,582,198 tokens; ours lacks test's ~4.4M. Not run against the hub here.)
