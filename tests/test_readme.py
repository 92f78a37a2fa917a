"""README.md's results tables are generated from committed results JSON, never typed by hand.

    python -m pytest tests/test_readme.py -q
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import star_table  # noqa: E402


def test_readme_star_table_is_what_star_table_py_makes():
    with open(os.path.join(ROOT, "README.md")) as f:
        block = star_table.readme_block(f.read())
    assert block == star_table.render(), "run `python bench/star_table.py --write` after adding results"


def test_readme_points_at_files_a_clone_has():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert "../shared" not in text
    for path in ("models/README.md", "data/FORMAT.md", "bench/star_table.py", "bench/gpu_check.sh", "engine.py"):
        assert path in text and os.path.exists(os.path.join(ROOT, path)), path
