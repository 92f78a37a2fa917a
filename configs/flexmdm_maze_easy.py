# FlexMDM on maze_easy (the paper's maze planning, success 92.3%) with star_easy's network, 16k + 4k steps and the
# paper's sampler: the rows bench/results/maze/flexmdm_maze_easy_seed*.json, test success 80.9% / 73.2%.
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
length_head = "distribution"  # a count distribution per gap (the official code's option; bench/results/maze_diag)
steps = 128
# the paper's sampler: insertions and reveals together, sampled tokens, Poisson insertions
unmask = "sample"
insert = "poisson"
reveal_after = 0.0
