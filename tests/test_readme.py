"""README.md and bench/README.md: their results tables are generated from committed results JSON, never typed
by hand; README.md's set-up commands are the ones CI runs; the paths it names exist.

    python -m pytest tests/test_readme.py -q
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import readme_tables  # noqa: E402


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def stale(text: str, tables: dict) -> list[str]:
    """The names of the blocks of `text` that are not what their generator prints (missing markers count)."""
    out = []
    for name, render in tables.items():
        begin, end = readme_tables.markers(name)
        if begin not in text or end not in text or readme_tables.readme_block(text, name) != render():
            out.append(name)
    return out


def generated_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"<!-- table:(\w+) -->.*?<!-- /table:\1 -->", text, re.S)]


def test_each_file_holds_exactly_what_readme_tables_py_makes():
    for rel, tables in readme_tables.DOCS.items():
        assert not stale(read(rel), tables), \
            f"{rel}: blocks {stale(read(rel), tables)} are not what bench/readme_tables.py makes: run it with --write"


def test_a_changed_number_or_a_lost_marker_is_caught():
    """The comparison above can fail: one digit changed inside a block, or a block's end marker gone."""
    text = read("README.md")
    name = "star_compact"
    block = readme_tables.readme_block(text, name)
    digit = re.search(r"\d", block)
    changed = block[:digit.start()] + str((int(digit.group()) + 1) % 10) + block[digit.end():]
    assert stale(text.replace(block, changed), readme_tables.FRONT) == [name]
    assert stale(text.replace(readme_tables.markers(name)[1], ""), readme_tables.FRONT) == [name]


ROW_FOLDERS = ("star", "maze", "shakespeare_char")  # bench/results/<folder>/*.json: one row each


def rows_of(folder: str) -> list[dict]:
    import glob
    import json
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(readme_tables.RESULTS, folder, "*.json")))]


def misplaced_marks(blocks: dict) -> list[str]:
    """Where a generated block (name -> text) shows a row's number with the mark though the row's measured_before
    field names no fix that changes it, or without it though one does; and blocks with marks but not one footnote
    line (or a footnote line and no mark)."""
    from star_table import MARK, blocks as bl, shown
    bad = []

    def check(block, line, r, number, count):  # count: the marks `line` holds when the row's `number` is marked
        want = count if any(number in e["affects"] for e in r.get("measured_before", [])) else 0
        if line is None or line.count(MARK) != want:
            bad.append(f"{block}: {r['name']}_seed{r['seed']} shows {line and line.count(MARK)} marks, not {want}")

    def line_with(block, text, start="|"):
        return next((x for x in blocks[block].splitlines() if x.startswith(start) and text in x), None)

    for r in rows_of("maze"):
        check("maze", line_with("maze", f"`{r['name']}_seed{r['seed']}.json` |"), r, "accuracy", 3)
    for r in rows_of("shakespeare_char"):
        check("shakespeare_char", line_with("shakespeare_char", f"`{r['name']}_seed{r['seed']}.json` |"), r, "nll", 1)
    for r in rows_of("star"):
        task, method = r["dataset"].split("/")[-1], shown(r["model"]) + bl(r)
        row_line = line_with("star", f"| `{r['config']}`")
        seed = row_line and re.search(rf"(?:\| |<br>)([^|<]*)\(seed {r['seed']}\)", row_line)
        check("star", seed and seed.group(1), r, "accuracy", 2)  # 'seq / tok (seed k)' in the main table
        check("star", line_with("star", f"| {method} | {task} | {r['seed']} |", "| " + method), r, "accuracy", 1)
        if task in ("easy", "medium"):  # README's table: one number per seed, in seed order, a column per task
            line = line_with("star_compact", f"| {method} |", "| " + method)
            seeds = sorted(x["seed"] for x in rows_of("star") if x["config"] == r["config"])
            cell = line and line.split(" | ")[1 + (task == "medium")].split(" · ")[seeds.index(r["seed"])]
            check("star_compact", cell, r, "accuracy", 1)
        shipped = line_with("shipped", f"(`{r['config']}`, seed {r['seed']}", "- ")
        if shipped:
            check("shipped", shipped, r, "accuracy", 2)
    for block, text in blocks.items():
        notes = [x for x in text.splitlines() if x.startswith(MARK)]
        marked = [x for x in text.splitlines() if MARK in x and not x.startswith(MARK)]
        if len(notes) != (1 if marked else 0):
            bad.append(f"{block}: {len(notes)} footnote lines for {len(marked)} marked lines")
    return bad


def marked_blocks() -> dict:
    texts = {rel: read(rel) for rel in readme_tables.DOCS}
    return {name: readme_tables.readme_block(texts[rel], name) for rel, tables in readme_tables.DOCS.items()
            for name in tables if name in ("star", "maze", "shakespeare_char", "star_compact", "shipped")}


def test_rows_measured_before_a_fix_and_only_they_carry_the_mark():
    """A row's measured_before field (a fix made after it was measured changes what a rerun gives) puts the mark
    on the numbers it affects wherever a table shows them, with one footnote line per block; no other row has it."""
    for folder in ROW_FOLDERS:
        for r in rows_of(folder):
            for e in r.get("measured_before", []):
                assert re.fullmatch(r"[0-9a-f]{7,40}", e["commit"]) and ": " in e["what"], (r["name"], e)
                assert e["affects"] and set(e["affects"]) <= {"accuracy", "nll"}, (r["name"], e)
    marked = {(r["name"], r["seed"]) for f in ROW_FOLDERS for r in rows_of(f) if r.get("measured_before")}
    assert len(marked) < sum(len(rows_of(f)) for f in ROW_FOLDERS)  # unmarked rows are checked below too
    assert misplaced_marks(marked_blocks()) == []


def test_a_lost_or_stray_mark_or_footnote_is_caught():
    """misplaced_marks can fail: in a table with marked and unmarked rows (maze or Shakespeare, one line a row),
    one mark dropped, one added to an unmarked row, the footnote gone; README's table with one seed's mark gone."""
    import pytest
    blocks = marked_blocks()
    name = next((n for n in ("maze", "shakespeare_char") if "†" in blocks[n]), None)
    if name is None:
        pytest.skip("no maze or Shakespeare row is marked now (every row measured at today's code)")
    lines = blocks[name].splitlines()
    on = next(i for i, x in enumerate(lines) if x.startswith("|") and "†" in x)
    off = next(i for i, x in enumerate(lines) if x.startswith("| ") and "†" not in x and ".json` |" in x)
    note = next(i for i, x in enumerate(lines) if x.startswith("†"))
    for i, new in ((on, lines[on].replace("†", "", 1)), (off, re.sub(r"(\d\.\d+)", r"\1†", lines[off], count=1)),
                   (note, "")):
        bad = misplaced_marks(dict(blocks, **{name: "\n".join(lines[:i] + [new] + lines[i + 1:])}))
        assert len(bad) == 1 and bad[0].startswith(name), (i, bad)
    if "†" in blocks["star_compact"]:  # the row's missing mark; with it the table's last, a stranded footnote too
        bad = misplaced_marks(dict(blocks, star_compact=blocks["star_compact"].replace("†", "", 1)))
        marks = sum(x.count("†") for x in blocks["star_compact"].splitlines() if not x.startswith("†"))
        assert len(bad) == (2 if marks == 1 else 1) and all(b.startswith("star_compact") for b in bad), bad


def test_every_block_has_a_generator_and_no_results_table_is_typed_by_hand():
    """No stale block a generator no longer makes; outside the generated blocks no table row holds a
    measured number (a decimal like 99.9): those are the generator's to write."""
    for rel, tables in readme_tables.DOCS.items():
        text = read(rel)
        assert set(re.findall(r"<!-- table:(\w+) -->", text)) == set(tables), rel
        for a, b in reversed(generated_spans(text)):
            text = text[:a] + text[b:]
        typed = [line for line in text.splitlines() if line.startswith("|") and re.search(r"\d\.\d", line)]
        assert not typed, f"{rel}: a table typed by hand (generate it in bench/readme_tables.py): {typed[0]}"


def test_readme_set_up_commands_are_two_and_ci_runs_the_second():
    text = read("README.md")
    first = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first) == 2 and first[0].endswith("python train.py") and "pytest" in first[1], first
    ci = [line for line in read(".ci/run").splitlines() if "pytest" in line]
    assert len(ci) == 1
    as_typed = ci[0].replace("python -m pip install -q", "pip install").strip()  # CI quietens pip, nothing else
    assert as_typed == first[1], f".ci/run runs {as_typed!r}, the README says {first[1]!r}: keep them one command"


def test_readme_is_short_and_points_at_files_a_clone_has():
    text = read("README.md")
    assert len(text.splitlines()) <= 260, "README.md is a walk-through of ~250 lines; tables go to bench/README.md"
    assert "../shared" not in text
    for path in ("models/README.md", "data/FORMAT.md", "bench/README.md", "bench/readme_tables.py",
                 "bench/gpu_check.sh", "engine.py", "LICENSE"):
        assert path in text and os.path.exists(os.path.join(ROOT, path)), path
    named = set(re.findall(r"\b((?:configs|models|data|bench|tests)/[\w/.]+\.(?:py|md|pt|sh))", text))
    named -= {"models/mymdlm.py"}  # the copy "Adding a model" makes
    assert len(named) > 20 and not [p for p in named if not os.path.exists(os.path.join(ROOT, p))], \
        [p for p in named if not os.path.exists(os.path.join(ROOT, p))]


def test_bench_readme_names_every_bench_script():
    text = read("bench/README.md")
    scripts = [f for f in os.listdir(os.path.join(ROOT, "bench")) if f.endswith((".py", ".sh"))]
    assert scripts and not [f for f in scripts if f not in text], [f for f in scripts if f not in text]


def test_plot_log_without_matplotlib_prints_the_curve(tmp_path, capsys, monkeypatch):
    import json
    import builtins
    import plot_log
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [{"config": {}}, {"step": 10, "loss": 2.5},
                                                        {"step": 10, "val_loss": 2.4, "val_seq_acc": 0.5}]) + "\n")
    real_import = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    plot_log.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "pip install matplotlib" in out and "val_loss 2.4000" in out and "val_seq_acc 0.5000" in out


def test_a_shipped_model_is_matched_to_the_row_of_its_own_run(tmp_path, monkeypatch):
    # a config rerun writes the same checkpoint path as the shipped model's run; the shipped line must quote the
    # row of the step it shipped (here the superseded one), and say its recipe changed
    import json
    import torch
    import star_table
    for folder in ("star", "speedrun", "star_superseded"):
        os.makedirs(tmp_path / "bench" / "results" / folder)
    os.makedirs(tmp_path / "models" / "pretrained")

    def row(folder: str, name: str, steps: int, acc: float):
        r = {"config": "configs/x.py", "model": "ilm", "dataset": "star/easy", "seed": 2, "steps": steps,
             "test_seq_acc": acc, "test_tok_acc": acc, "eval_command": "python eval.py --ckpt=out/x_seed2/ckpt.pt "
             "--split=test"}
        with open(tmp_path / "bench" / "results" / folder / name, "w") as f:
            json.dump(r, f)
    row("speedrun", "x_seed2.json", 2400, 0.999)  # today's rerun of the config
    row("star_superseded", "x_seed2_old.json", 2200, 0.996)  # the run the shipped model came from
    torch.save({"source": {"ckpt": "out/x_seed2/ckpt.pt"}, "step": 2200}, tmp_path / "models" / "pretrained" / "x.pt")
    monkeypatch.setattr(star_table, "ROOT", str(tmp_path))
    monkeypatch.setattr(star_table, "RESULTS", str(tmp_path / "bench" / "results" / "star"))
    line = star_table.shipped()[0]
    assert "test seq / tok 99.6 / 99.6%" in line and "its recipe before a change: x_seed2_old.json" in line
    torch.save({"source": {"ckpt": "out/x_seed2/ckpt.pt"}, "step": 2400}, tmp_path / "models" / "pretrained" / "x.pt")
    line = star_table.shipped()[0]
    assert "test seq / tok 99.9 / 99.9%" in line and "before a change" not in line
