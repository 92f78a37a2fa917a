"""
Does a star task let a model guess the goal's branch at the junction without tracing back from the goal?
Measures, on XLM's generator (xlm-core 0.3.1, xlm/tasks/star/__init__.py, run from its source file: no
install needed, numpy only) or on ours (data/star/prepare.py), how often the source is the junction, how far
the goal lies past the junction, and the accuracy of simple guesses (longest / shortest branch, the first
out-edge in the prompt, the smallest id, ...). Written to answer why the XLM paper's ARLM scores 33.1 on
star_easy but 77.2 on star_medium (bench/results/star_medium_probes.json):

    pip download --no-deps xlm-core==0.3.1 -d /tmp/xlmsrc && cd /tmp/xlmsrc && unzip -q xlm_core-0.3.1-py3-none-any.whl -d src
    python bench/diag/star_branch_stats.py xlm medium 20000 /tmp/xlmsrc/src/xlm/tasks/star/__init__.py
    python bench/diag/star_branch_stats.py ours medium 20000
"""
import ast, os, random, sys, collections, json
import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if len(sys.argv) < 4 or sys.argv[1] not in ('xlm', 'ours') or sys.argv[2] not in ('easy', 'medium', 'hard') \
        or (sys.argv[1] == 'xlm' and len(sys.argv) < 5):
    sys.exit(__doc__)
SRC = sys.argv[4] if len(sys.argv) > 4 else None
tree = ast.parse(open(SRC).read()) if SRC else ast.Module(body=[], type_ignores=[])
keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in
        ('simple_star_graph', 'asymmetric_variable_armlength_star_graph', 'identify_junction_node')]
ns = {'np': np, 'random': random, 'Counter': collections.Counter, 'chain': __import__('itertools').chain,
      'List': list, 'Tuple': tuple, 'Graph': dict}
exec(compile(ast.Module(body=keep, type_ignores=[]), SRC or 'none', 'exec'), ns)

def analyse(graphs, D):
    c = collections.Counter(); dist = collections.Counter(); tl = collections.Counter()
    jpos = collections.Counter(); n = 0
    for g in graphs:
        E = [tuple(map(int, e)) for e in g['edge_list']]; s, t = int(g['source']), int(g['goal']); path = [int(x) for x in g['path']]
        assert path[0] == s and path[-1] == t and all((a, b) in set(E) for a, b in zip(path, path[1:]))
        j = ns['identify_junction_node'](E) if SRC else collections.Counter(a for a, b in E).most_common(1)[0][0]  # most out-edges
        assert j in path
        succ = collections.defaultdict(list); pred = {}
        for a, b in E: succ[a].append(b); pred[b] = a
        outs = succ[j]; assert len(outs) == D, (outs, D)
        # post-junction segment length of each branch
        def seglen(x):
            k = 1
            while succ.get(x): x = succ[x][0]; k += 1
            return k
        # full arm length (nodes) containing branch: pre-junction parts are not tied to a branch (ambiguous), so use post
        segs = [seglen(x) for x in outs]
        gi = path.index(j); gb = path[gi + 1]; gseg = segs[outs.index(gb)]
        n += 1
        c['source_is_junction'] += (s == j)
        d = len(path) - 1 - gi; dist[d] += 1
        tl[len(path)] += 1
        c['goal_seg_unique_longest'] += gseg > max(x for k, x in enumerate(segs) if outs[k] != gb)
        c['goal_seg_longest_incl_ties'] += gseg == max(segs)
        c['goal_seg_unique_shortest'] += gseg < min(x for k, x in enumerate(segs) if outs[k] != gb)
        # longest-segment heuristic accuracy (ties random): expected value
        m = max(segs); c['heur_longest_acc'] += (gseg == m) / segs.count(m)
        mn = min(segs); c['heur_shortest_acc'] += (gseg == mn) / segs.count(mn)
        # order in prompt of the junction's out-edges
        order = [k for k, (a, b) in enumerate(E) if a == j]
        rank = sorted(order).index(E.index((j, gb))); jpos[rank] += 1
        c['goal_branch_smallest_id'] += gb == min(outs)
        c['goal_out_edge_is_first_junction_out_edge'] += rank == 0
        c['path_edge_first_in_prompt'] += (E[0] in set(zip(path, path[1:])))
        c['goal_is_max_id_of_leaves'] += t == max(x for x in pred if x not in succ)
        # arm containing source's pre-junction part is the goal's arm by construction; other in-arms
        c['n_in_arms'] += sum(1 for a, b in E if b == j)
    out = {k: round(v / n, 4) for k, v in sorted(c.items())}
    out['dist_junction_to_goal'] = {k: round(v / n, 4) for k, v in sorted(dist.items())}
    out['mean_dist'] = round(sum(k * v for k, v in dist.items()) / n, 4)
    out['path_nodes'] = {k: round(v / n, 4) for k, v in sorted(tl.items())}
    out['rank_of_goal_out_edge_among_junction_out_edges'] = {k: round(v / n, 4) for k, v in sorted(jpos.items())}
    out['n'] = n
    return out

def xlm(task, n, seed=42):
    np.random.seed(seed); random.seed(seed)
    if task == 'easy':
        return [ns['simple_star_graph'](3, 5, 20) for _ in range(n)]
    if task == 'medium':
        return [ns['asymmetric_variable_armlength_star_graph'](3, 3, 6, 20, 2) for _ in range(n)]
    return [ns['asymmetric_variable_armlength_star_graph'](5, 6, 12, 56, 5) for _ in range(n)]

if __name__ == '__main__':
    which, task, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    D = {'easy': 3, 'medium': 3, 'hard': 5}[task]
    if which == 'xlm':
        gs = xlm(task, n)
    else:
        sys.path.insert(0, ROOT)
        from data.star.prepare import generate
        g = generate(task, n, 0)
        gs = []
        for i in range(n):
            E = [tuple(e) for e in g['edges'][i] if e[0] >= 0]
            arm0 = [int(x) for x in g['arms'][i, 0] if x >= 0]
            gs.append(dict(edge_list=E, source=int(g['source'][i]), goal=int(g['goal'][i]), path=arm0))
    print(which, task, json.dumps(analyse(gs, D), indent=0))
