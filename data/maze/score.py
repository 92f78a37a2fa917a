"""
Maze success (eval.py's valid_acc, data/FORMAT.md "Scoring"): a generated path counts when it solves the
problem, not only when it is the reference path. Any path that walks open cells one step at a time from the
first subgoal to the last and passes the subgoals in order is a solution (the reference is the shortest one;
a detour into a dead end and back is longer, and still valid).

As XLM's MazeSuccess (xlm-core src/xlm/tasks/maze/metrics.py): every cell open, every move to one of the four
neighbours, subgoals in order as a subsequence. Stricter: the path must also start at the first subgoal and
end at the last (XLM's accepts a path that runs on past them). Reads only the ids and meta.json (itos names
cells "row,col"; meta['task']['maze'] is the maze, '#' wall, '.' open), so it needs nothing from prepare.py.
"""


def cell(i: int, meta: dict):
    """Token id -> (row, col), or None for a special or an id outside the data's vocabulary."""
    itos = meta['itos']
    if not 0 <= i < len(itos) or itos[i].startswith('<'):
        return None
    r, c = itos[i].split(',')
    return int(r), int(c)


def valid(prompt: list[int], output: list[int], meta: dict) -> bool:
    """prompt: the subgoal ids; output: the generated target ids (no -1). True when output solves prompt."""
    maze = meta['task']['maze']
    goals = [cell(i, meta) for i in prompt]
    path = [cell(i, meta) for i in output]
    if not goals or not path or None in goals or None in path:
        return False                                    # empty, or a special / non-cell token
    if any(maze[r][c] != '.' for r, c in path):
        return False                                    # walks into a wall
    if any(abs(r - r2) + abs(c - c2) != 1 for (r, c), (r2, c2) in zip(path, path[1:])):
        return False                                    # a jump (or standing still): not one step apart
    if path[0] != goals[0] or path[-1] != goals[-1]:
        return False                                    # starts or ends in the wrong place
    want = iter(path)                                   # subgoals in order: a subsequence of the path
    return all(any(g == p for p in want) for g in goals)
