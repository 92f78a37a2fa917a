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
