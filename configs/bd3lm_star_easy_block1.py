# BD3-LM on star_easy, blocks of 1: each block is one masked token predicted from the clean past, an AR model
# (models/bd3lm.py's block_len = 1 end); otherwise bd3lm_star_easy.py's recipe and sampler. Row (seed 1337):
# test 34.3 / 50.7 in confidence order, 41 min on one thread (ARLM 34.0 / 50.5).
out_dir = "out/bd3lm_star_easy_block1"
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
block_len = 1  # the 9-position canvas is 9 blocks of one token
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 1  # one token: one step
order = "confidence"  # MaskGIT's order per block: 28.2% vs 15.6% (bench/results/bd3lm_star_easy_probes.json)
