# FlexMDM on maze_easy at twice flexmdm_maze_easy.py's steps (32k + 8k, otherwise the same): is FlexMDM
# below MDLM on the mazes (80.9 vs 92.7 easy) because 20k steps undertrain it? Its curve was still rising at 20k.
# Row (seed 1337): test success 91.5% (exact 39.8%) against 80.9% (22.8%) at 20k: yes. ≥ 69 min + 9 min eval.
out_dir = "out/flexmdm_maze_easy_40k"
dataset = "maze/easy"
model = "flexmdm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 40000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
# then ILM's phase 2: a lower learning rate, batch 64 and an EMA of the weights
phases = [dict(start=32000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000
best_metric = "val_seq_acc"  # the reference is the shortest path, the only one without a detour; eval.py adds valid_acc
length_head = "distribution"  # a count distribution per gap (the official code's option): 81% valid vs 60% (maze_diag)
steps = 128
# the paper's sampler: tau-leaping, insertions and reveals together, sampled tokens, Poisson insertions.
# star_easy's insert-first sampler writes 2% valid paths from the same weights (bench/results/maze_diag)
unmask = "sample"
insert = "poisson"
reveal_after = 0.0
