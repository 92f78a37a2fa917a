"""
Tests for data/maze/prepare.py and data/maze/score.py: the mazes are perfect, every reference path is valid
by the scorer, the scorer rejects each kind of wrong path, the splits are disjoint and deterministic, the
loader opens them, and eval.py reports valid_acc next to seq_acc. CPU only, about half a minute.

    python -m pytest tests/test_maze.py -q
"""
import json
import os
import shutil
import subprocess
import sys
from collections import deque

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data.loader import Dataset  # noqa: E402
from data.maze.prepare import OFFSET, PAD, TASKS, generate, make_maze, shortest_paths, write_task  # noqa: E402
from data.maze.score import valid  # noqa: E402

SIZES = {'train': 2000, 'val': 100, 'test': 300}
ROW_WIDTH = {'easy': 67, 'medium': 100, 'hard': 133, 'xlm_easy': 132, 'xlm_medium': 264, 'xlm_hard': 412}


@pytest.fixture(scope='module', params=['easy', 'medium', 'hard', 'xlm_easy'])
def prepared(request, tmp_path_factory):
    """(task, folder, meta, {split: (prompts, targets)} as lists of id lists)"""
    task = request.param
    out = str(tmp_path_factory.mktemp('maze') / task)
    meta = write_task(task, out, SIZES, seed=0)
    rows = {}
    for split in SIZES:
        x = np.fromfile(os.path.join(out, f'{split}.bin'), dtype=np.uint16).reshape(-1, meta['row_width'])
        pl = np.fromfile(os.path.join(out, f'{split}_prompt_len.bin'), dtype=np.uint16)
        prompts = [r[:p].tolist() for r, p in zip(x, pl)]
        targets = [[int(i) for i in r[p:] if i != PAD] for r, p in zip(x, pl)]
        rows[split] = (prompts, targets)
    return task, out, meta, rows


def test_mazes_are_perfect():
    """Recursive division leaves a spanning tree of the m x m rooms: 2m^2 - 1 open cells, all connected,
    a closed border, every room open and every post (even, even) a wall."""
    for m in (2, 3, 6, 10, 20):
        for seed in range(3):
            g = make_maze(m, np.random.default_rng(seed))
            assert g.shape == (2 * m + 1, 2 * m + 1) and g.sum() == 2 * m * m - 1
            assert not g[0].any() and not g[-1].any() and not g[:, 0].any() and not g[:, -1].any()
            assert g[1::2, 1::2].all() and not g[::2, ::2].any()
            cells, dist, step = shortest_paths(g)  # asserts that every open cell reaches every other
            assert len(cells) == 2 * m * m - 1 and (dist == dist.T).all()


def test_layout_and_every_reference_is_valid(prepared):
    task, _, meta, rows = prepared
    t = TASKS[task]
    assert meta['row_width'] == ROW_WIDTH[task] == t['max_subgoals'] + t['max_path']
    maze = meta['task']['maze']
    assert len(maze) == 2 * t['m'] + 1 and meta['vocab_size'] == OFFSET + len(maze) ** 2
    cells, dist, _ = shortest_paths(np.array([[ch == '.' for ch in row] for row in maze]))
    index = {int(c) + OFFSET: i for i, c in enumerate(cells)}
    for split, (prompts, targets) in rows.items():
        assert len(prompts) == SIZES[split] == meta['splits'][split]['rows']
        for prompt, target in zip(prompts, targets):
            assert t['min_subgoals'] <= len(prompt) <= t['max_subgoals'] and len(set(prompt)) == len(prompt)
            assert 2 <= len(target) <= t['max_path']
            assert valid(prompt, target, meta)
            # and it is the shortest solution: one cell more than the steps between consecutive subgoals
            legs = [dist[index[a], index[b]] for a, b in zip(prompt, prompt[1:])]
            assert len(target) == 1 + sum(legs)


def test_target_lengths_vary(prepared):
    """The point of the task: answers of many lengths (FlexMDM must choose one, MDLM pads to the longest)."""
    task, _, meta, rows = prepared
    lens = np.array([len(t) for t in rows['train'][1]])
    assert lens.std() > 5 and len(set(lens)) > 20
    assert lens.max() <= meta['max_target_len'] and meta['splits']['train']['target_len_max'] == lens.max()


def path_of(meta: dict, prompt: list[int]) -> list[int]:
    """The reference path (ids) of a prompt, by BFS over the maze in meta (independent of prepare.py)."""
    maze, W = meta['task']['maze'], len(meta['task']['maze'][0])
    rc = lambda i: divmod(i - OFFSET, W)  # noqa: E731
    path = [prompt[0]]
    for a, b in zip(prompt, prompt[1:]):
        prev, queue = {rc(a): None}, deque([rc(a)])
        while queue:
            r, c = queue.popleft()
            for n in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if maze[n[0]][n[1]] == '.' and n not in prev:
                    prev[n] = (r, c)
                    queue.append(n)
        leg, x = [], rc(b)
        while x != rc(a):
            leg.append(OFFSET + x[0] * W + x[1])
            x = prev[x]
        path += leg[::-1]
    return path


def test_scorer_rejects_each_kind_of_wrong_path(prepared):
    _, _, meta, rows = prepared
    maze, W = meta['task']['maze'], len(meta['task']['maze'][0])
    tok = lambda r, c: OFFSET + r * W + c  # noqa: E731
    rc = lambda i: divmod(i - OFFSET, W)  # noqa: E731
    checked = 0
    for prompt, target in zip(*rows['test']):
        if len(prompt) < 3 or target.count(prompt[-1]) > 1 or target.count(prompt[0]) > 1 or len(target) < 6:
            continue
        assert target == path_of(meta, prompt)
        nbrs = lambda r, c: [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]  # noqa: E731
        j = next(j for j in range(1, len(target) - 1)  # a cell that is no subgoal and has a wall beside it
                 if target[j] not in prompt and any(maze[n[0]][n[1]] == '#' for n in nbrs(*rc(target[j]))))
        wall = next(tok(*n) for n in nbrs(*rc(target[j])) if maze[n[0]][n[1]] == '#')
        # a wall hit: step into a wall beside the path and back, everything else right
        assert not valid(prompt, target[:j + 1] + [wall, target[j]] + target[j + 1:], meta)
        # disconnected: a cell left out, so two consecutive cells are two apart; or standing still
        assert not valid(prompt, target[:j] + target[j + 1:], meta)
        assert not valid(prompt, target[:j + 1] + target[j:], meta)
        # wrong end or start: stops one short of the goal / starts one cell late
        assert not valid(prompt, target[:-1], meta)
        assert not valid(prompt, target[1:], meta)
        # runs on past the goal (XLM's metric would take this one)
        back = target[-2]
        assert not valid(prompt, target + [back], meta)
        # a waypoint skipped: the direct path from start to goal, when it misses the waypoint
        direct = path_of(meta, [prompt[0], prompt[-1]])
        if prompt[1] not in direct:
            assert not valid(prompt, direct, meta)
        # waypoints in the wrong order: the path of the problem with two waypoints swapped
        if len(prompt) >= 4:
            swapped = [prompt[0], prompt[2], prompt[1], *prompt[3:]]
            other = path_of(meta, swapped)
            assert valid(swapped, other, meta)
            if prompt[2] not in other[other.index(prompt[1]):]:  # it never passes them in the asked order
                assert not valid(prompt, other, meta)
        # tokens that are no cells: a special, the model's own mask slot past the vocabulary, nothing at all
        assert not valid(prompt, target[:j] + [3] + target[j + 1:], meta)
        assert not valid(prompt, target[:j] + [meta['vocab_size']] + target[j + 1:], meta)
        assert not valid(prompt, [], meta)
        # and a detour into a side cell and back is longer than the reference, yet valid
        side = [tok(*n) for n in nbrs(*rc(target[j]))
                if maze[n[0]][n[1]] == '.' and tok(*n) not in (target[j - 1], target[j + 1])]
        if side:
            assert valid(prompt, target[:j + 1] + [side[0], target[j]] + target[j + 1:], meta)
        checked += 1
        if checked == 25:
            break
    assert checked >= 10


def test_splits_are_disjoint_and_deterministic(prepared, tmp_path):
    task, out, meta, rows = prepared
    keys = {s: {tuple(p) for p in rows[s][0]} for s in rows}
    assert not keys['train'] & keys['val'] and not keys['train'] & keys['test'] and not keys['val'] & keys['test']
    again = str(tmp_path / 'again')
    write_task(task, again, SIZES, seed=0)
    for f in sorted(os.listdir(out)):
        with open(os.path.join(out, f), 'rb') as a, open(os.path.join(again, f), 'rb') as b:
            assert a.read() == b.read(), f
    # test and val come first from the stream: a bigger train split leaves them as they are; another seed
    # is another maze and other problems
    bigger = generate(task, {**SIZES, 'train': 3000}, seed=0)
    for split in ('val', 'test'):
        assert [p.tolist() for p in bigger[split]['rows']] == \
            np.fromfile(os.path.join(out, f'{split}.bin'), dtype=np.uint16).reshape(-1, meta['row_width']).tolist()
    other = generate(task, SIZES, seed=1)
    assert (other['grid'] != np.array([[ch == '.' for ch in r] for r in meta['task']['maze']])).any()


def test_loader_opens_every_split(prepared):
    _, out, meta, rows = prepared
    for split in SIZES:
        d = Dataset(out, split)
        tokens, prompt_lens = d.get(np.arange(min(d.n_items, 50)))
        prompt, target = d.split_prompt_target(tokens, prompt_lens)
        for i in range(len(tokens)):
            assert [int(x) for x in prompt[i] if x >= 0] == rows[split][0][i]
            assert [int(x) for x in target[i] if x >= 0] == rows[split][1][i]


def test_eval_reports_valid_acc(tmp_path, tiny):
    """A tiny ARLM trained for 20 steps: eval.py finds data/maze/score.py beside the data and reports valid_acc
    (>= seq_acc: the reference is valid), a "valid" flag per prediction, and nothing of the kind without it."""
    import eval as evaluate_script
    import train
    root = tmp_path / 'maze'
    data = str(root / 'easy')
    write_task('easy', data, {'train': 512, 'val': 32, 'test': 64}, seed=0)
    shutil.copy(os.path.join(ROOT, 'data', 'maze', 'score.py'), root / 'score.py')  # as data/maze/ has it
    out = str(tmp_path / 'run')
    train.main([*tiny, f'--dataset={data}', f'--out_dir={out}', '--max_iters=20', '--eval_interval=20',
                '--phases=[]'])
    ckpt = os.path.join(out, 'ckpt.pt')
    r = evaluate_script.main([f'--ckpt={ckpt}', '--split=test', '--batch_size=64'])
    assert 0.0 <= r['seq_acc'] <= r['valid_acc'] <= 1.0 and r['examples'] == 64
    with open(os.path.join(out, f"results_{evaluate_script.results_name(ckpt, data, 'test')}.json")) as f:
        assert json.load(f)['valid_acc'] == r['valid_acc']
    with open(os.path.join(out, f"predictions_{evaluate_script.results_name(ckpt, data, 'test')}.jsonl")) as f:
        preds = [json.loads(line) for line in f]
    assert len(preds) == 64 and sum(p['valid'] for p in preds) / 64 == r['valid_acc']
    assert all(p['valid'] for p in preds if p['correct'])

    # a scorer that takes everything gives 1.0; one without valid() is an error; no score.py, no valid_acc
    (root / 'score.py').write_text('def valid(prompt, output, meta):\n    return True\n')
    assert evaluate_script.main([f'--ckpt={ckpt}', '--split=test', f'--out_dir={tmp_path}/e1'])['valid_acc'] == 1.0
    (root / 'score.py').write_text('x = 1\n')
    from data.loader import NanoError
    with pytest.raises(NanoError, match='must define valid'):
        evaluate_script.main([f'--ckpt={ckpt}', '--split=test', f'--out_dir={tmp_path}/e2'])
    os.remove(root / 'score.py')
    r = evaluate_script.main([f'--ckpt={ckpt}', '--split=test', f'--out_dir={tmp_path}/e3'])
    assert 'valid_acc' not in r and 'seq_acc' in r


def test_cli(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'data', 'maze', 'prepare.py'), '--tasks', 'easy',
                          '--n_train', '300', '--n_val', '20', '--n_test', '40', '--out', str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert 'maze_easy: 13x13 maze, vocab 173, row width 67' in out
    assert sorted(os.listdir(tmp_path / 'easy')) == sorted(
        ['meta.json'] + [f'{s}{x}.bin' for s in ('train', 'val', 'test') for x in ('', '_prompt_len')])
    bad = subprocess.run([sys.executable, os.path.join(ROOT, 'data', 'maze', 'prepare.py'), '--tasks', 'huge',
                          '--out', str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and 'unknown task' in bad.stderr
