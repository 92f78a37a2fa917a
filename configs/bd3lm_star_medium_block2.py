# BD3-LM on star_medium, blocks of 2; otherwise bd3lm_star_medium.py's recipe and sampler. Row (seed 1337):
# test 95.7 / 94.8 in confidence order, 33 min on one thread: the best block length here (4: 84.5, one: 77.7).
out_dir = "out/bd3lm_star_medium_block2"
dataset = "star/medium"
model = "bd3lm"
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
# then ILM's phase 2: a lower learning rate and an EMA of the weights (as mdlm_star_medium.py)
phases = [dict(start=20000, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
block_len = 2  # the 11-position canvas is blocks of 2, 2, 2, 2, 2 and 1
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 4  # about two a position
order = "confidence"  # MaskGIT's order per block (star_easy: 28.2% vs 15.6%, bench/results/bd3lm_star_easy_probes.json)
