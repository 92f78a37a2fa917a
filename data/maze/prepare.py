"""
Maze planning with subgoals (FlexMDM's planning task, Kim et al. 2025, arXiv 2509.01025): one fixed maze
per task; given ordered subgoals (start, waypoints, goal), write a path through open cells that visits them in
order. The answer's length varies with the problem, which is what a fixed-length MDLM canvas has to guess and
FlexMDM inserts. Writes the rows layout of data/FORMAT.md, one folder per task:

    python data/maze/prepare.py                      # data/maze/{easy,medium,hard}/
    python data/maze/prepare.py --tasks xlm_easy     # the XLM rebuild's own easy tier (longer rows)
    python data/maze/prepare.py --tasks easy --n_train 1000 --out /tmp/maze

Where the specification comes from: the FlexMDM paper reports MDM -> FlexMDM success on easy/medium/hard
mazes but publishes no generator or data (its official code, github.com/brianlck/FlexMDM, has none), and per
XLM no exact tier settings. The XLM package rebuilds the task (xlm-core main, src/xlm/tasks/maze/generate.py
and docs/tasks/maze.md, after Appendix D.1 of arXiv 2606.02133): a perfect maze by recursive division on a
(2m+1)^2 grid, cells as flattened ids, subgoals-first sampling (k distinct open cells joined by BFS shortest
paths, rows longer than a cap rejected), prompt = subgoals, target = the whole path, success = a valid path
rather than the reference.
This is our own code after that description. What differs:
- tiers: easy/medium/hard here are smaller mazes with shorter caps, so a 4-layer model trains on a CPU;
  xlm_easy/xlm_medium/xlm_hard are XLM's tiers (the paper's own are unpublished), generated on request only;
- splits: no problem (subgoal list) is in two splits; XLM also keeps each (start, goal) pair in one split
  and drops repeats within a split, which small mazes cannot afford without skewing the splits apart;
- success (data/maze/score.py) also requires the path to start at the first subgoal and end at the last;
- random streams are numpy's, so the mazes and examples are not XLM's.
"""
import argparse
import os
import sys
from collections import deque

import numpy as np

if __package__ in (None, ''):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402
from data.loader import NanoError  # noqa: E402


# -----------------------------------------------------------------------------
# m: the maze has m x m rooms on a (2m+1) x (2m+1) grid (odd rows and columns are rooms, the cells between
# two rooms are passages or walls); k subgoals ~ U{min_subgoals..max_subgoals}; a path has at most max_path
# cells (longer draws are rejected, so the cap shapes the length distribution). The easy..hard rows are 67,
# 100 and 133 tokens wide (star_hard: 134): a 4L/64 MDLM step of batch 32 takes ~105/205/305 ms on one thread.
TASKS = {
    'easy':       dict(m=6,  min_subgoals=3, max_subgoals=3,  max_path=64),
    'medium':     dict(m=8,  min_subgoals=3, max_subgoals=4,  max_path=96),
    'hard':       dict(m=10, min_subgoals=3, max_subgoals=5,  max_path=128),
    # XLM's reconstruction tiers (docs/tasks/maze.md): 41 x 41 and 400 from arXiv 2606.02133, the rest XLM's
    # choices; xlm_easy's two-subgoal problems (199 x 198) are held out of train more often than the rest
    'xlm_easy':   dict(m=10, min_subgoals=2, max_subgoals=4,  max_path=128),
    'xlm_medium': dict(m=15, min_subgoals=3, max_subgoals=8,  max_path=256),
    'xlm_hard':   dict(m=20, min_subgoals=4, max_subgoals=12, max_path=400),
}
SPLITS = ('train', 'val', 'test')
SPECIALS = ['<pad>', '<bos>', '<eos>', '<mask>']  # grid cell (r, c) is token id len(SPECIALS) + r * W + c
PAD, BOS, EOS, MASK = 0, 1, 2, 3
OFFSET = len(SPECIALS)
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))


def make_maze(m: int, rng: np.random.Generator) -> np.ndarray:
    """A perfect maze by recursive division: (2m+1, 2m+1) bool, True = open. Rooms sit at odd (row, col);
    a region of rooms is cut by a wall along an even line with one gap at a room's position, and both halves
    are cut again until they are one room wide. Every room is then reachable from every other by exactly one
    path (a spanning tree of the m x m rooms: 2m^2 - 1 open cells)."""
    side = 2 * m + 1
    grid = np.zeros((side, side), dtype=bool)
    grid[1:-1, 1:-1] = True
    stack = [(1, 1, side - 2, side - 2)]  # (top, left, height, width) in grid cells, odd sizes
    while stack:
        top, left, h, w = stack.pop()
        if h < 3 or w < 3:
            continue
        horizontal = h > w if h != w else rng.random() < 0.5  # cut across the longer side
        if horizontal:
            r = top + 1 + 2 * rng.integers((h - 1) // 2)      # an even row inside the region
            gap = left + 2 * rng.integers((w + 1) // 2)       # an odd column: a room's
            grid[r, left:left + w] = False
            grid[r, gap] = True
            stack += [(top, left, r - top, w), (r + 1, left, top + h - r - 1, w)]
        else:
            c = left + 1 + 2 * rng.integers((w - 1) // 2)
            gap = top + 2 * rng.integers((h + 1) // 2)
            grid[top:top + h, c] = False
            grid[gap, c] = True
            stack += [(top, left, h, c - left), (top, c + 1, h, left + w - c - 1)]
    return grid


def shortest_paths(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BFS from every open cell. Returns cells (n,) flat ids of the open cells in row-major order, dist (n, n)
    steps between them, and step (n, n): step[b, a] is the open-cell index of a's neighbour one step
    closer to b (step[b, b] = b). In a perfect maze the shortest path is the only simple one."""
    H, W = grid.shape
    cells = np.flatnonzero(grid.ravel())
    index = {int(c): i for i, c in enumerate(cells)}
    nbrs = [[index[(r + dr) * W + c + dc] for dr, dc in MOVES if grid[r + dr, c + dc]]
            for r, c in (divmod(int(x), W) for x in cells)]  # the border is wall: no bounds checks needed
    n = len(cells)
    dist = np.full((n, n), -1, dtype=np.int32)
    step = np.full((n, n), -1, dtype=np.int32)
    for b in range(n):
        dist[b, b], step[b, b] = 0, b
        queue = deque([b])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if dist[b, v] < 0:
                    dist[b, v], step[b, v] = dist[b, u] + 1, u
                    queue.append(v)
    assert (dist >= 0).all(), "the maze is not connected"
    return cells, dist, step


def split_seed(seed: int, task: str) -> list[int]:
    """Each task has its own streams: [seed, task index, 0] draws the maze, [seed, task index, 1] the
    problems, so one task's data does not change when another is added or resized."""
    return [seed, list(TASKS).index(task)]


def generate(task: str, sizes: dict[str, int], seed: int) -> dict:
    """Every split of `task`, from one stream of problems (a problem is its subgoal list: in a perfect maze
    that fixes the answer). Test takes the first sizes['test'] draws, val the next ones that are not in test,
    train the next ones in neither, so the splits are disjoint and test does not change with the train size.
    Repeats within a split are kept, so removing the held-out problems from train thins each subgoal count
    uniformly; our tiers have >= 3 subgoals so that this is a few percent (two-subgoal problems, 71 x 70 in
    the easy maze, would mostly be held out and train would see few of them).
    Returns grid (H, W) bool, held_out (draws skipped because val/test had them) and, per split: rows
    (n, row_width) uint16 prompt + target + pad, prompt_lens, target_lens, subgoals (n, max_subgoals) flat
    cell ids (-1 past the last) and paths (list of flat cell id arrays, subgoals included)."""
    t = TASKS[task]
    lo, hi, cap = t['min_subgoals'], t['max_subgoals'], t['max_path']
    grid = make_maze(t['m'], np.random.default_rng(split_seed(seed, task) + [0]))
    cells, dist, step = shortest_paths(grid)
    rng = np.random.default_rng(split_seed(seed, task) + [1])

    def draws():
        """Problems forever, in batches: k distinct open cells each, kept when the whole path fits the cap."""
        while True:
            k = rng.integers(lo, hi + 1, size=4096)
            pick = np.argsort(rng.random((4096, len(cells))), axis=1)[:, :hi]  # distinct, uniformly ordered
            a, b = pick[:, :-1], pick[:, 1:]
            steps = np.where(np.arange(1, hi) < k[:, None], dist[a, b], 0).sum(1)  # path cells = steps + 1
            for i in np.flatnonzero(steps + 1 <= cap):
                yield pick[i, :k[i]]

    stream, held, held_out = draws(), set(), 0
    out = {'grid': grid}
    for split in ('test', 'val', 'train'):
        probs, keys = [], set()
        while len(probs) < sizes[split]:
            p = next(stream)
            if p.tobytes() in held:
                held_out += 1
                continue
            keys.add(p.tobytes())
            probs.append(p)
        held |= keys
        rows = np.full((len(probs), hi + cap), PAD, dtype=np.uint16)
        subgoals = np.full((len(probs), hi), -1, dtype=np.int64)
        paths, plens, tlens = [], [], []
        for i, p in enumerate(probs):
            path = [int(p[0])]
            for g in p[1:]:                          # walk each leg along the BFS tree towards its subgoal
                while path[-1] != g:
                    path.append(int(step[g, path[-1]]))
            ids = np.concatenate([cells[p], cells[path]]) + OFFSET
            rows[i, :len(ids)] = ids
            subgoals[i, :len(p)] = cells[p]
            paths.append(cells[path])
            plens.append(len(p))
            tlens.append(len(path))
        out[split] = dict(rows=rows, prompt_lens=np.array(plens, dtype=np.int64),
                          target_lens=np.array(tlens, dtype=np.int64), subgoals=subgoals, paths=paths)
    out['held_out'] = held_out
    return out


def write_task(task: str, out_dir: str, sizes: dict[str, int], seed: int) -> dict:
    """Generate every split of `task` and write {split}.bin, {split}_prompt_len.bin and meta.json (which
    carries the maze, for data/maze/score.py) into out_dir. Returns the meta dict (and, in meta['task'],
    how many draws were skipped because val or test had them)."""
    t = TASKS[task]
    g = generate(task, sizes, seed)
    H, W = g['grid'].shape
    itos = SPECIALS + [f'{r},{c}' for r in range(H) for c in range(W)]  # walls too: a wall hit is a token
    prep_utils.start_output(out_dir)  # meta.json goes first and comes back last: no half-written data
    splits = {}
    for split in SPLITS:
        s = g[split]
        assert s['rows'].max() < len(itos)
        s['rows'].tofile(os.path.join(out_dir, f'{split}.bin'))
        s['prompt_lens'].astype(np.uint16).tofile(os.path.join(out_dir, f'{split}_prompt_len.bin'))
        splits[split] = {'rows': int(sizes[split]), 'tokens': int((s['rows'] != PAD).sum()),
                         'target_len_mean': float(s['target_lens'].mean()) if sizes[split] else 0.0,
                         'target_len_max': int(s['target_lens'].max()) if sizes[split] else 0}
    meta = prep_utils.write_meta(out_dir, **{  # data/FORMAT.md; written last
        'name': f'maze_{task}',
        'layout': 'rows',
        'vocab_size': len(itos),
        'dtype': 'uint16',
        'pad': PAD, 'bos': BOS, 'eos': EOS, 'mask': MASK,
        'itos': itos,
        'row_width': t['max_subgoals'] + t['max_path'],
        'max_prompt_len': t['max_subgoals'],
        'max_target_len': t['max_path'],
        'splits': splits,
        # the maze is drawn with np.random.default_rng([seed, task index, 0]), the problems with [..., 1];
        # maze rows: '#' wall, '.' open
        'task': {**t, 'seed': seed, 'held_out_draws': g['held_out'],
                 'maze': [''.join('.' if x else '#' for x in row) for row in g['grid']]},
    })
    return meta


# -----------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', default='easy,medium,hard', help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument('--out', default=os.path.dirname(os.path.abspath(__file__)), help='root; writes OUT/<task>/')
    parser.add_argument('--n_train', type=int, default=50_000)
    parser.add_argument('--n_val', type=int, default=1_000)
    parser.add_argument('--n_test', type=int, default=5_000)
    parser.add_argument('--seed', type=int, default=42)
    args = parser.parse_args(argv)
    sizes = {'train': args.n_train, 'val': args.n_val, 'test': args.n_test}
    for split, n in sizes.items():  # the loader refuses an empty split: say so now, not in a traceback
        if n < 1:
            raise NanoError(f"--n_{split}={n}: every split needs at least one example")
    for task in args.tasks.split(','):
        if task not in TASKS:
            parser.error(f"unknown task {task!r}; choose from {','.join(TASKS)}")
        out_dir = os.path.join(args.out, task)
        meta = write_task(task, out_dir, sizes, args.seed)
        H = len(meta['task']['maze'])
        print(f"{meta['name']}: {H}x{H} maze, vocab {meta['vocab_size']}, row width {meta['row_width']} "
              f"(prompt <= {meta['max_prompt_len']}, target <= {meta['max_target_len']}) -> {os.path.relpath(out_dir)}")
        for split, c in meta['splits'].items():
            print(f"  {split}: {c['rows']:,} rows, {c['tokens']:,} tokens, "
                  f"target length mean {c['target_len_mean']:.1f} max {c['target_len_max']}")
        print(f"  draws skipped because val or test had them: {meta['task']['held_out_draws']:,}")


if __name__ == '__main__':
    from engine import run_main  # bad input or a full disk: one line, not a traceback
    run_main(main, sys.argv[1:])

# expected output (python data/maze/prepare.py; about 6 s):
# maze_easy: 13x13 maze, vocab 173, row width 67 (prompt <= 3, target <= 64) -> data/maze/easy
#   train: 50,000 rows, 1,650,715 tokens, target length mean 30.0 max 64
#   val: 1,000 rows, 32,291 tokens, target length mean 29.3 max 64
#   test: 5,000 rows, 165,117 tokens, target length mean 30.0 max 64
#   draws skipped because val or test had them: 879
# maze_medium: 17x17 maze, vocab 293, row width 100 (prompt <= 4, target <= 96) -> data/maze/medium
#   train: 50,000 rows, 2,878,153 tokens, target length mean 54.1 max 96
#   val: 1,000 rows, 57,889 tokens, target length mean 54.4 max 96
#   test: 5,000 rows, 287,972 tokens, target length mean 54.1 max 96
#   draws skipped because val or test had them: 57
# maze_hard: 21x21 maze, vocab 445, row width 133 (prompt <= 5, target <= 128) -> data/maze/hard
#   train: 50,000 rows, 4,173,025 tokens, target length mean 79.7 max 128
#   val: 1,000 rows, 83,414 tokens, target length mean 79.7 max 128
#   test: 5,000 rows, 415,879 tokens, target length mean 79.5 max 128
#   draws skipped because val or test had them: 12
# train target lengths (cells, subgoals included), 10/50/90%: easy 14/29/48, medium 26/54/84, hard 38/82/118
