# FlexMDM on star_medium (targets of 4-10 tokens): star_easy's recipe and sampler to 32k steps, with the count
# distribution length head; the rows bench/results/star/flexmdm_star_medium_seed*.json, test 37.3 / 61.2 (seed 1337)
# and 35.1 / 51.2 (seed 2) after the neighbour_mix fix (49.3 and 59.2 before it: bench/results/star_superseded/).
out_dir = "out/flexmdm_star_medium"
dataset = "star/medium"
model = "flexmdm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 32000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
length_head = "distribution"  # p(count) per gap; the sampler writes its mode at t = 0 as the length
steps = 40  # sampler steps: with reveal_after = 0.25 the first 10 insert the target's masks (4-10), the other 30 reveal
# sampler only (training unaffected): insert first, then the surest masks (bench/results/flexmdm_notes.json)
unmask = "confidence"
insert = "binomial"
reveal_after = 0.25
