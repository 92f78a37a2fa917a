# FlexMDM on star_easy with mdlm_star_easy.py's recipe (4L/64, neighbour mixing, absolute positions, 20k + 8k):
# the rows bench/results/star/flexmdm_star_easy_seed*.json, test 99.7 / 99.9 and 98.5 / 99.5 with the sampler below.
out_dir = "out/flexmdm_star_easy"
dataset = "star/easy"
model = "flexmdm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 28000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
steps = 32  # sampler steps: with reveal_after = 0.25 the first 8 insert the target's masks, the other 24 reveal them
# sampler only (training unaffected): insert first, then the surest masks (bench/results/flexmdm_notes.json)
unmask = "confidence"
insert = "binomial"
reveal_after = 0.25
