# FlexMDM on maze_hard: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 90.0%
# (MDM 24.2) on its unpublished tier; flexmdm_maze_easy.py's recipe (16k + 4k steps, the paper's sampler).
# Row (seed 1337): test success 14.0% (exact 1.1%; MDLM 4.6%), 84 + 52 min eval, one shared thread; still rising.
out_dir = "out/flexmdm_maze_hard"
dataset = "maze/hard"
model = "flexmdm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 20000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
# then ILM's phase 2: a lower learning rate, batch 64 and an EMA of the weights
phases = [dict(start=16000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000  # an evaluation generates 200 paths of <= 128 cells in 256 steps (FlexMDM: ~4 min)
best_metric = "val_seq_acc"  # the reference is the shortest path, the only one without a detour; eval.py adds valid_acc
length_head = "distribution"  # a count distribution per gap (the official code's option): 81% valid vs 60% on easy (maze_diag)
steps = 256  # two per position of the 128-cell limit
# the paper's sampler: tau-leaping, insertions and reveals together, sampled tokens, Poisson insertions
# (star_easy's insert-first sampler, with the expectation head: 0.2% on maze_medium, star_superseded)
unmask = "sample"
insert = "poisson"
reveal_after = 0.0
