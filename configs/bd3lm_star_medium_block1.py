# BD3-LM on star_medium, blocks of 1: one masked token a block, predicted from the clean past (an AR model);
# otherwise bd3lm_star_medium.py's recipe and sampler. Row (seed 1337): test 34.1 / 58.1 in confidence order,
# 33 min on one thread: the 1/3 plateau ARLM's seed 2 also stayed on (ARLM 72.9 / 33.9).
out_dir = "out/bd3lm_star_medium_block1"
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
block_len = 1  # the 11-position canvas is 11 blocks of one token
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 1  # one token: one step
order = "confidence"  # MaskGIT's order per block (star_easy: 28.2% vs 15.6%, bench/results/bd3lm_star_easy_probes.json)
