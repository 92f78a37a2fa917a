# FlexMDM on maze_easy: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 92.3%
# (MDM 68.4) on its unpublished tier; flexmdm_star_easy.py's recipe, 16k + 4k steps, the paper's sampler.
# Rows: test success 80.9% (seed 1337; a rerun gave the same), 73.2% (seed 2); 24-37 min + 7-10 min test eval, one
# shared thread, 2-core EPYC. Undertrained: 91.5% / 88.1% at twice the steps (flexmdm_maze_easy_40k.py).
out_dir = "out/flexmdm_maze_easy"
dataset = "maze/easy"
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
eval_interval = 2000
best_metric = "val_seq_acc"  # the reference is the shortest path, the only one without a detour; eval.py adds valid_acc
length_head = "distribution"  # a count distribution per gap (the official code's option): 81% valid vs 60% (maze_diag)
steps = 128
# the paper's sampler: tau-leaping, insertions and reveals together, sampled tokens, Poisson insertions.
# star_easy's insert-first sampler writes 2% valid paths from the same weights (bench/results/maze_diag)
unmask = "sample"
insert = "poisson"
reveal_after = 0.0
