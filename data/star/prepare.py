"""
Star-graph planning tasks (DESIGN.md §3, as in XLM / ILM): given a shuffled edge list, a source and a
goal, write the path from source to goal. Writes the rows layout of data/FORMAT.md, one folder per task:

    python data/star/prepare.py                      # data/star/{easy,medium,hard,easy_n56,medium_n56}/
    python data/star/prepare.py --tasks easy --n_train 1000 --out /tmp/star

The graphs follow the XLM generators (xlm-core 0.3.1, xlm/tasks/star/__init__.py:
simple_star_graph, asymmetric_variable_armlength_star_graph; task parameters from
xlm/commands/generate_star_graphs.py; prompt/target format from preprocess_fn there). This is our own
vectorised numpy code; the random streams differ from XLM's, so the examples are not the same ones.
"""
import argparse
import os
import sys

import numpy as np

if __package__ in (None, ''):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from data import prep_utils  # noqa: E402
from data.loader import NanoError  # noqa: E402


# -----------------------------------------------------------------------------
# Every task is `degree` arms that share one junction node. An arm is a path of `min_arm..max_arm`
# nodes (junction included) with at least `min_after` nodes after the junction. The source and goal are
# the first and last nodes of arm 0, and the answer is all of arm 0.
# star_easy is XLM's symmetric star written in the same terms: min_after = arm length - 1 puts the
# junction at the start of every arm, so it is the centre, every arm leaves it, and the source is the
# centre. Arm 0 is a uniformly random arm because labels are random and the edges are shuffled (XLM, too,
# builds the goal's arm first and then shuffles).
TASKS = {
    'easy':   dict(generator='symmetric',  degree=3, min_arm=5, max_arm=5,  min_after=4, n_nodes=20),
    'medium': dict(generator='asymmetric', degree=3, min_arm=3, max_arm=6,  min_after=2, n_nodes=20),
    'hard':   dict(generator='asymmetric', degree=5, min_arm=6, max_arm=12, min_after=5, n_nodes=56),
    # curriculum steps toward hard (configs/ilm_star_hard_curriculum.py): easy's and medium's shapes over
    # hard's 56 node labels, so all three share star_hard's vocabulary
    'easy_n56':   dict(generator='symmetric',  degree=3, min_arm=5, max_arm=5, min_after=4, n_nodes=56),
    'medium_n56': dict(generator='asymmetric', degree=3, min_arm=3, max_arm=6, min_after=2, n_nodes=56),
}
SPLITS = ('train', 'val', 'test')
SPECIALS = ['<pad>', '<bos>', '<eos>', '<mask>']  # node i is token id len(SPECIALS) + i
PAD, BOS, EOS, MASK = 0, 1, 2, 3
OFFSET = len(SPECIALS)


def max_lens(task: str) -> tuple[int, int]:
    """(max_prompt_len, max_target_len): the theoretical maxima, so a task's row width never depends on
    the sample. Prompt = 2 tokens per edge + source + goal; target = 2 tokens per edge of arm 0."""
    t = TASKS[task]
    max_edges = t['degree'] * (t['max_arm'] - 1)
    return 2 * max_edges + 2, 2 * (t['max_arm'] - 1)


def split_seed(seed: int, task: str, split: str) -> list[int]:
    """Each (task, split) gets its own stream, so splits are independent and one task's data does not
    change when another is added or resized."""
    return [seed, list(TASKS).index(task), SPLITS.index(split)]


def generate(task: str, n: int, seed: int | list[int]) -> dict[str, np.ndarray]:
    """n examples of `task`, all at once. Returns
        rows        (n, W) uint16  prompt + target + pad, token ids (row layout of data/FORMAT.md)
        prompt_lens (n,)           2 * n_edges + 2
        target_lens (n,)           2 * (len(arm 0) - 1)
        arms        (n, D, max_arm) node ids (not token ids) of each arm in order, -1 past its end
        arm_lens    (n, D), junction (n,) node id, junction_pos (n, D) its index in each arm
        edges       (n, D*(max_arm-1), 2) node ids in prompt order, -1 rows past the last edge
        source, goal (n,)          node ids
    The same (task, n, seed) gives the same bytes; a smaller n is not a prefix of a larger one."""
    t = TASKS[task]
    D, lo, hi, after, N = t['degree'], t['min_arm'], t['max_arm'], t['min_after'], t['n_nodes']
    assert 1 + D * (hi - 1) <= N, "not enough node ids for the longest arms"
    rng = np.random.default_rng(seed)

    # arm lengths i.i.d. uniform; junction uniform over positions 0..L-after-1 of each arm, so it may be
    # an arm's first node (then the source is the junction) but never one of its last `after` (XLM:
    # np.random.randint(path_length - min_plan_length) per arm)
    L = rng.integers(lo, hi + 1, size=(n, D))                   # (n, D)
    J = rng.integers(0, L - after)                              # (n, D)

    # labels: a random permutation of the pool per example; its first entry is the junction and arm a
    # takes its fresh ids from its own block, so all ids are distinct and carry no position information
    # (XLM: np.random.choice(vocab_size, n_needed, replace=False))
    ids = np.argsort(rng.random((n, N)), axis=1)                # (n, N)
    junction = ids[:, 0]
    fresh = ids[:, 1:1 + D * (hi - 1)].reshape(n, D, hi - 1)
    p = np.arange(hi)                                           # position along an arm
    k = p - (p > J[..., None])                                  # skip the junction's slot in the block
    arms = np.take_along_axis(fresh, k, axis=2)                 # (n, D, hi)
    arms = np.where(p == J[..., None], junction[:, None, None], arms)
    arms = np.where(p < L[..., None], arms, -1)

    # edges point along the arm (first node -> last; in the symmetric star, away from the centre), as in
    # XLM; the shuffle permutes whole edges and keeps each edge's (u, v) order, like XLM's
    # random.shuffle(edge_list). Missing edges (short arms) get key 2 and sort to the end.
    u, v = arms[:, :, :-1], arms[:, :, 1:]                      # (n, D, hi-1)
    valid = (v >= 0)[..., None]
    edges = np.where(valid, np.stack([u, v], axis=-1), -1).reshape(n, D * (hi - 1), 2)
    order = np.argsort(np.where(edges[..., 1] >= 0, rng.random(edges.shape[:2]), 2.0), axis=1)
    edges = np.take_along_axis(edges, order[..., None], axis=1)

    # row = edges flattened, source, goal, then arm 0 as edge pairs u1 v1 v1 v2 ...; pushing the -1 holes
    # to the end with a stable sort keeps the token order and leaves pad only at the end
    source = arms[:, 0, 0]
    goal = arms[np.arange(n), 0, L[:, 0] - 1]
    path_pairs = np.where(valid[:, 0], np.stack([u[:, 0], v[:, 0]], axis=-1), -1).reshape(n, -1)
    seq = np.concatenate([edges.reshape(n, -1), source[:, None], goal[:, None], path_pairs], axis=1)
    assert seq.shape[1] == sum(max_lens(task))
    seq = np.take_along_axis(seq, np.argsort(seq < 0, axis=1, kind='stable'), axis=1)
    rows = np.where(seq >= 0, seq + OFFSET, PAD).astype(np.uint16)

    n_edges = (L - 1).sum(1)
    return dict(rows=rows, prompt_lens=2 * n_edges + 2, target_lens=2 * (L[:, 0] - 1), arms=arms,
                arm_lens=L, junction=junction, junction_pos=J, edges=edges, source=source, goal=goal)


def problem_keys(g: dict[str, np.ndarray]) -> set[bytes]:
    """One key per example that ignores the edge order: the same graph with the same source and goal
    (and so the same answer) gives the same key."""
    e = g['edges']
    code = np.where(e[..., 0] >= 0, e[..., 0] * 1000 + e[..., 1], -1)  # node ids < 1000
    keys = np.concatenate([np.sort(code, axis=1), g['source'][:, None], g['goal'][:, None]], axis=1)
    return set(map(bytes, keys.astype(np.int32)))


def write_task(task: str, out_dir: str, sizes: dict[str, int], seed: int) -> tuple[dict, dict[str, int]]:
    """Generate every split of `task` and write {split}.bin, {split}_prompt_len.bin and meta.json into
    out_dir. Returns the meta dict plus the problem overlaps with train (printed, not filtered: XLM does
    not filter either, and for these sizes overlaps are astronomically rare)."""
    t = TASKS[task]
    max_prompt_len, max_target_len = max_lens(task)
    itos = SPECIALS + [str(i) for i in range(t['n_nodes'])]
    prep_utils.start_output(out_dir)  # meta.json goes first and comes back last: no half-written data
    splits, keys = {}, {}
    for split in SPLITS:
        g = generate(task, sizes[split], split_seed(seed, task, split))
        assert g['rows'].max() < len(itos)
        g['rows'].tofile(os.path.join(out_dir, f'{split}.bin'))
        g['prompt_lens'].astype(np.uint16).tofile(os.path.join(out_dir, f'{split}_prompt_len.bin'))
        splits[split] = {'rows': int(sizes[split]), 'tokens': int((g['rows'] != PAD).sum())}
        keys[split] = problem_keys(g)
    meta = prep_utils.write_meta(out_dir, **{  # data/FORMAT.md; written last
        'name': f'star_{task}',
        'layout': 'rows',
        'vocab_size': len(itos),
        'dtype': 'uint16',
        'pad': PAD, 'bos': BOS, 'eos': EOS, 'mask': MASK,
        'itos': itos,
        'row_width': max_prompt_len + max_target_len,
        'max_prompt_len': max_prompt_len,
        'max_target_len': max_target_len,
        'splits': splits,
        # split s of this task was drawn with np.random.default_rng([seed, task index, split index])
        'task': {**t, 'seed': seed},
    })
    overlaps = {s: len(keys[s] & keys['train']) for s in ('val', 'test')}
    return meta, overlaps


# -----------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', default=','.join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument('--out', default=os.path.dirname(os.path.abspath(__file__)), help='root; writes OUT/<task>/')
    parser.add_argument('--n_train', type=int, default=50_000)
    parser.add_argument('--n_val', type=int, default=1_000)  # XLM uses 100; more gives a steadier val loss
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
        meta, overlaps = write_task(task, out_dir, sizes, args.seed)
        print(f"{meta['name']}: vocab {meta['vocab_size']}, row width {meta['row_width']} "
              f"(prompt <= {meta['max_prompt_len']}, target <= {meta['max_target_len']}) -> {os.path.relpath(out_dir)}")
        for split, c in meta['splits'].items():
            print(f"  {split}: {c['rows']:,} rows, {c['tokens']:,} tokens")
        print(f"  problems also in train (same graph, source and goal): val {overlaps['val']}, test {overlaps['test']}")


if __name__ == '__main__':
    from engine import run_main  # bad input or a full disk: one line, not a traceback
    run_main(main, sys.argv[1:])

# expected output (python data/star/prepare.py):
# star_easy: vocab 24, row width 34 (prompt <= 26, target <= 8) -> data/star/easy
#   train: 50,000 rows, 1,700,000 tokens
#   val: 1,000 rows, 34,000 tokens
#   test: 5,000 rows, 170,000 tokens
#   problems also in train (same graph, source and goal): val 0, test 0
# star_medium: vocab 24, row width 42 (prompt <= 32, target <= 10) -> data/star/medium
#   train: 50,000 rows, 1,501,292 tokens
#   val: 1,000 rows, 30,028 tokens
#   test: 5,000 rows, 149,700 tokens
#   problems also in train (same graph, source and goal): val 0, test 0
# star_hard: vocab 60, row width 134 (prompt <= 112, target <= 22) -> data/star/hard
#   train: 50,000 rows, 4,899,600 tokens
#   val: 1,000 rows, 98,194 tokens
#   test: 5,000 rows, 489,740 tokens
#   problems also in train (same graph, source and goal): val 0, test 0
# star_easy_n56: vocab 60, row width 34 (prompt <= 26, target <= 8) -> data/star/easy_n56
# ...
# star_medium_n56: vocab 60, row width 42 (prompt <= 32, target <= 10) -> data/star/medium_n56
# ...
# (about 2 s in all; each folder holds meta.json, {train,val,test}.bin, {train,val,test}_prompt_len.bin)
