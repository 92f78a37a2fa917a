# BD3-LM on star_easy, blocks of 2, between ARLM (block 1) and the block-4 row. Otherwise
# bd3lm_star_easy.py's recipe and sampler. Row (seed 1337): test 35.5 / 51.6 in confidence order, 34 min on
# one thread (ARLM 34.0).
out_dir = "out/bd3lm_star_easy_block2"
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
block_len = 2  # the 9-position canvas (8 targets + the end) is blocks of 2, 2, 2, 2 and 1
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 4  # about two a position
order = "confidence"  # MaskGIT's order per block: 28.2% vs 15.6% (bench/results/bd3lm_star_easy_probes.json)
