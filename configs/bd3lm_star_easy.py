# BD3-LM on star_easy (Arriola et al. 2025, block diffusion: blocks of 4 written left to right, each by masked
# diffusion; models/bd3lm.py): mdlm_star_easy.py's 4L/64 network and recipe, mask counts per block, 20k steps
# then its phase 2 for 8k. Row (seed 1337): test 28.7 / 49.7 in confidence order (17.7 random), 54 min (ARLM 34.0).
out_dir = "out/bd3lm_star_easy"
dataset = "star/easy"
model = "bd3lm"
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
# then ILM's phase 2: a lower learning rate, batch 64 and an EMA of the weights
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
block_len = 4  # the 9-position canvas (8 targets + the end) is blocks of 4, 4 and 1
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 8  # sampler steps per block: about two a position
order = "confidence"  # MaskGIT's order per block: 28.2% vs 15.6% (bench/results/bd3lm_star_easy_probes.json)
