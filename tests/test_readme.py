"""README.md's results tables are generated from committed results JSON, never typed by hand.

    python -m pytest tests/test_readme.py -q
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import readme_tables  # noqa: E402
import star_table  # noqa: E402


def test_readme_star_table_is_what_star_table_py_makes():
    with open(os.path.join(ROOT, "README.md")) as f:
        block = star_table.readme_block(f.read())
    assert block == star_table.render(), "run `python bench/star_table.py --write` after adding results"


def test_readme_benchmark_tables_are_what_readme_tables_py_makes():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    for name, render in readme_tables.TABLES.items():
        begin, end = readme_tables.markers(name)
        assert begin in text and end in text, f"README.md lacks the markers {begin} ... {end}"
        assert readme_tables.readme_block(text, name) == render(), \
            f"README table {name!r} is not what bench/readme_tables.py makes: run `python bench/readme_tables.py --write`"


def test_readme_points_at_files_a_clone_has():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert "../shared" not in text
    for path in ("models/README.md", "data/FORMAT.md", "bench/star_table.py", "bench/readme_tables.py", "bench/gpu_check.sh", "engine.py"):
        assert path in text and os.path.exists(os.path.join(ROOT, path)), path


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
