# FlexMDM on maze_medium: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 90.4%
# (MDM 29.3) on its unpublished tier; flexmdm_star_easy.py's recipe, 16k + 4k steps.
# Row (seed 1337): test success 0.2% (exact 0.1%), 47 min on one thread: the easy recipe does not carry over.
out_dir = "out/flexmdm_maze_medium"
dataset = "maze/medium"
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
steps = 192  # sampler steps: the first quarter insert (up to 96 masks), the rest reveal them
# sampler only (training unaffected): insert first, then the surest masks (as flexmdm_star_easy.py)
unmask = "confidence"
insert = "binomial"
reveal_after = 0.25
