"""
The star-graph tables, made from the committed results JSON (bench/results/star/*.json, written by
bench/star_row.py): nothing in them is typed by hand. render() is the full table of bench/README.md (every
row with its command, seeds, wall time and machine), compact() the one table of README.md, shipped() the
list of models/pretrained/. bench/readme_tables.py puts them into the two files (tests/test_readme.py checks
that they hold what this prints).

    python bench/star_table.py            # print
    python bench/star_table.py --write    # update bench/README.md and README.md (bench/readme_tables.py --write)
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from engine import config_files  # noqa: E402  (a config with `base = ...` is its base plus its own lines)
RESULTS = os.path.join(ROOT, "bench", "results", "star")
PAPER = {  # XLM paper, Table 1 (12-layer, d=768), sequence / token accuracy %: the column the rows aim at
    ("arlm", "easy"): "33.1 / 81.7", ("arlm", "medium"): "77.2 / 82.1", ("arlm", "hard"): "25.2 / 43.7",
    ("ilm", "easy"): "100 / 100", ("ilm", "medium"): "100 / 100", ("ilm", "hard"): "97.5 / 98.2",
    ("mlm", "easy"): "100 / 100", ("mlm", "medium"): "83.1 / 98.0", ("mlm", "hard"): "25.3 / 79.6",
    ("mdlm", "easy"): "100 / 100", ("mdlm", "medium"): "36.5 / 90.6", ("mdlm", "hard"): "21.0 / 54.9",
}
ORDER = {"ilm": 0, "mdlm": 1, "mlm": 2, "arlm": 3, "easy": 0, "medium": 1, "hard": 2}


def block_len(r: dict):
    """The block_len a row's config sets (BD3-LM rows differ only in that; 0 is one block), else None."""
    cfg = {}
    for path in config_files(os.path.join(ROOT, r["config"])):
        exec(open(path).read(), cfg)  # configs are plain literals
    return cfg.get("block_len")


def blocks(r: dict) -> str:
    """', blocks of k' (', one block') for a row whose config sets block_len, else ''."""
    bl = block_len(r)
    return "" if bl is None else ", one block" if bl == 0 else f", blocks of {bl}"


def load(results: str = RESULTS) -> dict:
    rows = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        with open(path) as f:
            r = json.load(f)
        rows.setdefault(r["config"], []).append(r)
    return dict(sorted(rows.items(), key=lambda kv: (ORDER.get(kv[1][0]["model"], 9),  # block 0 (one) last
                                                     ORDER.get(kv[1][0]["dataset"].split("/")[-1], 9),
                                                     block_len(kv[1][0]) or float("inf"))))


NAMES = {"bd3lm": "BD3-LM", "flexmdm": "FlexMDM", "editflow": "Edit Flows"}  # the papers' spellings


def shown(model: str) -> str:
    return NAMES.get(model, model.upper())


def wall(r: dict, digits: int = 1) -> str:
    """A row's training wall time; '≥' when a process of the run was killed without a word (its time after
    the last thing it logged is unknown, bench/star_row.py train_time)."""
    return f"{'≥ ' if r.get('killed_segments') else ''}{r['wall_s'] / 60:.{digits}f} min"


def layout(r: dict) -> str:
    """How a row's training ran: '1 thread(s)', '2 ranks', or each layout in turn when resumed on another."""
    segs = r.get("segments") or [{"ranks": r.get("ranks") or 1, "threads": r["machine"].get("threads") or r.get("threads")}]
    return ", then ".join(dict.fromkeys(f"{s['ranks']} ranks" if s["ranks"] > 1 else f"{s['threads'] or '?'} thread(s)"
                                        for s in segs))


def wall_note(rows: list[dict]) -> list[str]:
    """The line that explains '≥', when a table shows one (else nothing)."""
    return ["≥ before a wall time: a process of that run was killed without a word (a lost session); its time "
            "after the last thing it logged is not counted (bench/star_row.py train_time)."] \
        if any(r.get("killed_segments") for r in rows) else []


MARK = "†"  # on a number a rerun at today's code would change (the row's measured_before field)


def before(r: dict, number: str) -> str:
    """MARK when a fix made after the row was measured changes its `number` ('accuracy' or 'nll'), else ''. The
    row's `measured_before` (added to rows whose run, checkpoint gone, cannot be re-measured) lists each fix."""
    return MARK if any(number in e["affects"] for e in r.get("measured_before", [])) else ""


def before_note(rows: list[dict], number: str, folder: str) -> list[str]:
    """The one line that explains MARK, when a table shows one (else nothing)."""
    fixes = {}  # the fix's name (what its entry says before the colon) -> its commits (one per model file)
    for e in (e for r in rows for e in r.get("measured_before", []) if number in e["affects"]):
        fixes.setdefault(e["what"].split(":")[0], set()).add(e["commit"])
    what = {"accuracy": "an accuracy", "nll": "an NLL"}[number]
    named = "; ".join(f"{name}: {', '.join(sorted(commits))}" for name, commits in sorted(fixes.items()))
    return [f"{MARK} after {what}: measured before a later fix that changes it ({named}); a rerun at today's code "
            f"would differ. Which fix and why: the `measured_before` field of `bench/results/{folder}/<row>.json`."] \
        if fixes else []


def sampler_args(r: dict) -> str:
    """The sampler settings a row's test evaluation set (what follows --split=test in its eval command, less
    --overwrite=True, which a re-evaluation after --resume adds)."""
    return " ".join(a for a in r["eval_command"].split("--split=test")[-1].split() if a != "--overwrite=True")


def first_reach(curve: list, level: float = 0.99):
    return next((c["train_s"] for c in curve if c.get("val_seq_acc", 0) >= level), None)


def render() -> str:
    rows = load()
    if not rows:
        return "(no results yet: run `python bench/star_row.py <config> --seed=<k>`)"
    out = ["| model | task | command (`python train.py <config> --seed=<k>`) | test seq / tok %, per seed | "
           "steps | wall, per seed | machine | XLM paper |", "|---|---|---|---|---|---|---|---|"]
    for config, seeds in rows.items():
        seeds = sorted(seeds, key=lambda r: r["seed"])
        r0 = seeds[0]
        task = r0["dataset"].split("/")[-1]
        accs = "<br>".join(f"{100 * r['test_seq_acc']:.1f}{before(r, 'accuracy')} / {100 * r['test_tok_acc']:.1f}"
                           f"{before(r, 'accuracy')} (seed {r['seed']})" for r in seeds)
        walls = " · ".join(wall(r, 0) for r in seeds)
        m = r0["machine"]
        machine = f"{m['cores']}-core {m['cpu']}, {layout(r0)}" + (", shared" if m.get("shared") or
                                                                                      max(m.get("load_avg_at_end") or [0]) > m["cores"] else "")
        extra = sampler_args(r0)
        out.append(f"| {shown(r0['model'])}{blocks(r0)} | {task} | `{config}`{f' (eval `{extra}`)' if extra else ''} | {accs} | {r0['steps'] // 1000}k | {walls} | "
                   f"{machine} | {PAPER.get((r0['model'], task), '')} |")
    every = [r for seeds in rows.values() for r in seeds]
    for note in wall_note(every) + before_note(every, "accuracy", "star"):
        out += ["", note]
    out += ["", "Time to accuracy: wall time from the start of the run (its evaluations included) until the "
            "validation sequence accuracy (the config's eval_gen_examples val prompts, 200 by default, decoded with "
            "the sampler the run was trained with) first reaches 99%; 'never' if it did not.", "",
            "| model | task | seed | first val seq acc >= 99% at | final test seq % | total wall |", "|---|---|---|---|---|---|"]
    for config, seeds in rows.items():
        for r in sorted(seeds, key=lambda r: r["seed"]):
            t = first_reach(r["curve"])
            reach = f"{t / 60:.1f} min" if t is not None else "never"
            out.append(f"| {shown(r['model'])}{blocks(r)} | {r['dataset'].split('/')[-1]} | {r['seed']} | {reach} | "
                       f"{100 * r['test_seq_acc']:.1f}{before(r, 'accuracy')} | {wall(r)} |")
    out += ["", *xlm_recipe_time()]
    return "\n".join(out)


def compact() -> str:
    """README.md's one results table: test sequence accuracy per method and task, one number per seed."""
    rows = load()
    if not rows:
        return "(no results yet: run `python bench/star_row.py <config> --seed=<k>`)"
    tasks = ("easy", "medium", "hard")
    cells, paper = {}, {}  # method -> task -> 'a · b' (seeds in order); method -> task -> the XLM paper's
    for config, seeds in rows.items():
        r0 = seeds[0]
        method, task = shown(r0["model"]) + blocks(r0), r0["dataset"].split("/")[-1]
        if task in tasks:
            cells.setdefault(method, {})[task] = " · ".join(f"{100 * r['test_seq_acc']:.1f}{before(r, 'accuracy')}"
                                                             for r in sorted(seeds, key=lambda r: r["seed"]))
            paper[method] = {t: PAPER.get((r0["model"], t), "–").split(" / ")[0] for t in tasks}
    out = ["| method | star_easy | star_medium | star_hard | XLM paper (12L/768), easy · medium · hard |",
           "|---|---|---|---|---|"]
    for method, c in cells.items():
        out.append(f"| {method} | {' | '.join(c.get(t, '–') for t in tasks)} | "
                   f"{' · '.join(paper[method].get(t, '–') for t in tasks)} |")
    every = [r for seeds in rows.values() for r in seeds if r["dataset"].split("/")[-1] in tasks]
    minutes = [r["wall_s"] / 60 for r in every]
    steps = [r["steps"] for r in every]
    layouts = sorted({layout(r) for r in every})
    cpus = sorted({f"{r['machine']['cores']}-core {r['machine']['cpu']}" for r in every})
    out += ["", f"Test sequence accuracy (%, {every[0]['test_examples']:,} test problems), one number per seed "
            f"(seed 2 · seed 1337, or 1337 alone) with the sampler settings of its row; each run {min(steps) // 1000}k–"
            f"{max(steps) // 1000}k steps, "
            f"{min(minutes):.0f}–{max(minutes):.0f} min on {' or '.join(layouts)} of a {', '.join(cpus)}." +
            (" star_hard: a curriculum from the method's shipped star model, grown to hard's 56 labels, then easy- and "
             "medium-shaped graphs over them, then hard mixed in (configs/<model>_star_hard_curriculum.py; the paper "
             "trains from scratch)." if any(r["dataset"].endswith("/hard") for r in every) else ""),
            *("\n" + note for note in before_note(every, "accuracy", "star"))]
    return "\n".join(out)


def xlm_recipe_time() -> list[str]:
    """The XLM package's own star recipe (12L/768, batch 64, 80k steps), timed per step here and extrapolated."""
    path = os.path.join(ROOT, "bench", "results", "compare_xlm_768.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        r = json.load(f)
    row = r["rows"][0]
    theirs, ours = row["theirs"][0], row["ours"][0]
    fields = dict(kv.split("=", 1) for kv in theirs["raw"].split()[1:])
    days = lambda steps_s: 80_000 / steps_s / 86_400  # noqa: E731
    return [f"For scale, the XLM package's own star recipe ({row['model'].upper()} {row['size']} (d/L/H), batch 64, "
            f"80k steps) would take about {days(theirs['steps_per_s']):.0f} days on one thread of this machine "
            f"(ours at that size: {days(ours['steps_per_s']):.0f}): extrapolated, not run, from "
            f"{theirs['steps_per_s']} steps/s over {fields['measured_steps']} timed steps after "
            f"{int(fields['steps']) - int(fields['measured_steps'])} warm-up steps (`{r['command']}`, load average {fields['loadavg_after'].split(',')[0]} on "
            f"{r['machine']['cpus']} cores)."]


def shipped() -> list[str]:
    """models/pretrained/*.pt with the test numbers of the row each was made from: the row that evaluated its
    run's checkpoint at the step it shipped (a rerun of the same config writes the same path; a shipped model of
    a recipe since changed is matched to its row in star_superseded/, and says so)."""
    import torch
    rows = {}  # the run's checkpoint path -> [(row, superseded file or None)], current rows first
    for results in (RESULTS, RESULTS + "/../speedrun", RESULTS + "/../maze", RESULTS + "_superseded"):
        for path in sorted(glob.glob(os.path.join(results, "*.json"))):
            with open(path) as f:
                r = json.load(f)
            old = os.path.basename(path) if results.endswith("_superseded") else None
            rows.setdefault(r["eval_command"].split("--ckpt=")[1].split()[0], []).append((r, old))
    out, shown_rows = [], []
    for path in sorted(glob.glob(os.path.join(ROOT, "models", "pretrained", "*.pt"))):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        r, old = next((x for x in rows.get(ckpt["source"]["ckpt"], []) if x[0].get("steps") == ckpt["step"]),
                      (None, None))
        shown_rows += [r] if r else []
        extra = sampler_args(r) if r else ""  # the sampler settings shipped
        score = (f"test success / exact {100 * r['eval']['valid_acc']:.1f}{before(r, 'accuracy')} / "  # a maze row
                 f"{100 * r['test_seq_acc']:.1f}" if r and "valid_acc" in r.get("eval", {}) else
                 f"test seq / tok {100 * r['test_seq_acc']:.1f}{before(r, 'accuracy')} / {100 * r['test_tok_acc']:.1f}"
                 if r else "")
        what = (f"{score}{before(r, 'accuracy')}% (`{r['config']}`, seed {r['seed']}"
                f"{', eval ' + repr(extra) if extra else ''}{', its recipe before a change: ' + old if old else ''})"
                if r else "no results row")
        out.append(f"- `models/pretrained/{os.path.basename(path)}` ({os.path.getsize(path) / 1e3:.0f} kB): {what}")
    return out + ["\n" + note for note in before_note(shown_rows, "accuracy", "star")]


def main():
    if "--write" in sys.argv:  # every generated block, star or not, in both files
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import readme_tables
        readme_tables.main(["--write"])
    else:
        print(render(), compact(), "\n".join(shipped()), sep="\n\n")


if __name__ == "__main__":
    main()
