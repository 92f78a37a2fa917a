"""
Tests for data/star/prepare.py: every example is a valid star-graph problem with its answer, generation
is deterministic, and the written files follow data/FORMAT.md. CPU only, a few seconds.

    python -m pytest tests/test_star_data.py -q
"""
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.star.prepare import (TASKS, SPLITS, OFFSET, PAD, generate, max_lens, split_seed,  # noqa: E402
                               write_task)

SPEC = {  # DESIGN.md §3: (prompt lengths, target lengths) a task may produce
    'easy': ({26}, {8}),
    'medium': (set(range(2 * 3 * 2 + 2, 33, 2)), set(range(4, 11, 2))),
    'hard': (set(range(2 * 5 * 5 + 2, 113, 2)), set(range(10, 23, 2))),
}
SPEC.update(easy_n56=SPEC['easy'], medium_n56=SPEC['medium'])  # the same shapes over hard's 56 labels
ROW_WIDTH = {'easy': 34, 'medium': 42, 'hard': 134, 'easy_n56': 34, 'medium_n56': 42}


@pytest.fixture(scope='module', params=list(TASKS))
def sample(request):
    task = request.param
    return task, generate(task, 2000, seed=123)


def test_widths():
    for task, w in ROW_WIDTH.items():
        assert sum(max_lens(task)) == w


def test_examples_are_valid(sample):
    """Check each example against the spec using only its row, then against the arms it was built from."""
    task, g = sample
    t = TASKS[task]
    D, lo, hi, after, N = t['degree'], t['min_arm'], t['max_arm'], t['min_after'], t['n_nodes']
    prompt_spec, target_spec = SPEC[task]
    assert g['rows'].dtype == np.uint16 and g['rows'].shape == (2000, ROW_WIDTH[task])
    for i, row in enumerate(g['rows']):
        pl, tl = int(g['prompt_lens'][i]), int(g['target_lens'][i])
        assert pl in prompt_spec and tl in target_spec
        prompt, target, rest = row[:pl], row[pl:pl + tl], row[pl + tl:]
        assert (rest == PAD).all()
        assert ((row[:pl + tl] >= OFFSET) & (row[:pl + tl] < OFFSET + N)).all()
        nodes = lambda x: [int(a) - OFFSET for a in x]  # noqa: E731
        edges = [tuple(e) for e in np.array(nodes(prompt[:-2])).reshape(-1, 2)]
        source, goal = nodes(prompt[-2:])
        path = nodes(target[0::2]) + nodes(target[-1:])

        # the graph: a tree (no node id repeated beyond its arms) with exactly one node of degree > 2
        assert len(edges) == (g['arm_lens'][i] - 1).sum() == (pl - 2) // 2
        assert len(set(edges)) == len(edges)
        degree = Counter(x for e in edges for x in e)
        assert len(degree) == len(edges) + 1
        hubs = [x for x, d in degree.items() if d > 2]
        assert hubs == [g['junction'][i]]
        assert degree[hubs[0]] >= D

        # the target: edge pairs u1 v1 v1 v2 ... from source to goal along edges of the prompt
        assert (target[1:-1:2] == target[2::2]).all()
        assert path[0] == source and path[-1] == goal and source != goal
        assert len(set(path)) == len(path) == tl // 2 + 1
        assert all((a, b) in set(edges) for a, b in zip(path, path[1:]))
        if task == 'easy':
            assert len(path) == 5 and source == g['junction'][i]  # start = the centre
        assert lo <= len(path) <= hi

        # the arms it was built from: lengths and junction place in spec, fresh ids everywhere else,
        # the prompt's edges are exactly the arms' edges, and the path is all of arm 0
        arms = [list(a[:n]) for a, n in zip(g['arms'][i], g['arm_lens'][i])]
        assert len(arms) == D and all(lo <= len(a) <= hi for a in arms)
        junction = g['junction'][i]
        for a, j in zip(arms, g['junction_pos'][i]):
            assert a.count(junction) == 1 and a[j] == junction and len(a) - 1 - j >= after
        others = [x for a in arms for x in a if x != junction]
        assert len(set(others)) == len(others)
        assert sorted(edges) == sorted((a[k], a[k + 1]) for a in arms for k in range(len(a) - 1))
        assert path == arms[0]


def test_distribution(sample):
    """Cheap checks that the randomness covers what the spec allows."""
    task, g = sample
    t = TASKS[task]
    assert set(np.unique(g['arm_lens'])) == set(range(t['min_arm'], t['max_arm'] + 1))
    junction_pos = g['junction_pos'][g['arm_lens'] == t['max_arm']]
    assert set(np.unique(junction_pos)) == set(range(t['max_arm'] - t['min_after']))
    assert set(np.unique(g['rows'][:, 0])) == set(range(OFFSET, OFFSET + t['n_nodes']))  # every label used
    assert len(set(map(bytes, g['rows']))) == len(g['rows'])
    first_path_edge = np.take_along_axis(g['rows'], g['prompt_lens'][:, None] + np.arange(2), axis=1)
    assert (g['rows'][:, :2] == first_path_edge).all(1).mean() < 0.25  # edges are shuffled (1/12 for easy)
    if t['generator'] == 'asymmetric':  # the source is sometimes the junction, sometimes not
        assert 0 < (g['source'] == g['junction']).mean() < 1


def test_determinism():
    for task in TASKS:
        a, b, c = (generate(task, 300, s)['rows'] for s in (7, 7, 8))
        assert a.tobytes() == b.tobytes()
        assert a.tobytes() != c.tobytes()
    assert split_seed(1, 'easy', 'train') != split_seed(1, 'easy', 'test') != split_seed(1, 'hard', 'test')


def read_task(d):
    with open(os.path.join(d, 'meta.json')) as f:
        meta = json.load(f)
    files = {name: open(os.path.join(d, name), 'rb').read() for name in sorted(os.listdir(d))}
    return meta, files


def test_write_round_trip(tmp_path):
    sizes = {'train': 200, 'val': 20, 'test': 50}
    for task in TASKS:
        d = tmp_path / task
        meta, overlaps = write_task(task, str(d), sizes, seed=5)
        assert set(overlaps) == {'val', 'test'}
        meta_disk, files = read_task(d)
        assert meta == meta_disk
        assert set(files) == {'meta.json'} | {f'{s}.bin' for s in SPLITS} | {f'{s}_prompt_len.bin' for s in SPLITS}
        assert set(meta) == {'format_version', 'name', 'layout', 'vocab_size', 'dtype', 'pad', 'bos', 'eos',
                             'mask', 'itos', 'row_width', 'max_prompt_len', 'max_target_len', 'splits', 'task'}
        N = TASKS[task]['n_nodes']
        assert meta['format_version'] == 1 and meta['name'] == f'star_{task}' and meta['layout'] == 'rows'
        assert meta['dtype'] == 'uint16' and meta['vocab_size'] == len(meta['itos']) == 4 + N
        assert (meta['pad'], meta['bos'], meta['eos'], meta['mask']) == (0, 1, 2, 3)
        assert meta['itos'][:4] == ['<pad>', '<bos>', '<eos>', '<mask>']
        assert meta['itos'][4:] == [str(i) for i in range(N)]
        assert meta['row_width'] == ROW_WIDTH[task] == meta['max_prompt_len'] + meta['max_target_len']
        assert meta['task']['seed'] == 5 and meta['task']['degree'] == TASKS[task]['degree']

        W, itos = meta['row_width'], meta['itos']
        for split in SPLITS:
            n = sizes[split]
            assert meta['splits'][split]['rows'] == n
            assert len(files[f'{split}.bin']) == n * W * 2
            assert len(files[f'{split}_prompt_len.bin']) == n * 2
            rows = np.memmap(d / f'{split}.bin', dtype=np.uint16, mode='r').reshape(-1, W)
            pls = np.fromfile(d / f'{split}_prompt_len.bin', dtype=np.uint16)
            assert rows.max() < meta['vocab_size']
            assert meta['splits'][split]['tokens'] == int((rows != PAD).sum())

            # the files hold what generate() makes for this split's seed
            g = generate(task, n, split_seed(5, task, split))
            assert rows.tobytes() == g['rows'].tobytes() and (pls == g['prompt_lens']).all()

            # decoding a row gives the prompt (edges, source, goal), then the target, then pads
            for i in range(5):
                pl, tl = int(pls[i]), int(g['target_lens'][i])
                words = [itos[x] for x in rows[i]]
                edges = [str(x) for e in g['edges'][i] if e[0] >= 0 for x in e]
                assert words[:pl] == edges + [str(g['source'][i]), str(g['goal'][i])]
                path = [str(x) for x in g['arms'][i, 0, :g['arm_lens'][i, 0]]]
                assert words[pl:pl + tl] == [x for a, b in zip(path, path[1:]) for x in (a, b)]
                assert words[pl + tl:] == ['<pad>'] * (W - pl - tl)

    # same seed, same bytes; another seed, other bytes
    write_task('medium', str(tmp_path / 'again'), sizes, seed=5)
    write_task('medium', str(tmp_path / 'other'), sizes, seed=6)
    assert read_task(tmp_path / 'again')[1] == read_task(tmp_path / 'medium')[1]
    assert read_task(tmp_path / 'other')[1]['train.bin'] != read_task(tmp_path / 'medium')[1]['train.bin']


def test_cli(tmp_path):
    script = os.path.join(ROOT, 'data', 'star', 'prepare.py')
    cmd = [sys.executable, script, '--tasks', 'easy,hard', '--out', str(tmp_path),
           '--n_train', '100', '--n_val', '10', '--n_test', '20']
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert 'star_easy' in out and 'star_hard' in out and 'test: 20 rows' in out
    assert sorted(os.listdir(tmp_path)) == ['easy', 'hard']
    assert os.path.getsize(tmp_path / 'hard' / 'train.bin') == 100 * 134 * 2
    bad = subprocess.run(cmd[:2] + ['--tasks', 'huge', '--out', str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and 'unknown task' in bad.stderr
