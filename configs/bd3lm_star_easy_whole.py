# BD3-LM on star_easy, one block, the whole canvas: MDLM but with the prompt blind to the canvas (models/bd3lm.py);
# mdlm_star_easy.py's recipe. Row (seed 1337): test 84.8 / 95.7 in confidence order, 36 min on one thread; it
# left the plateau (val loss 0.9) only at 24k, in phase 2, and was still rising at 28k (MDLM 100.0).
out_dir = "out/bd3lm_star_easy_whole"
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
block_len = 0  # one block: the whole 9-position canvas
time_sampling = "count"  # k masks ~ U{1..n} per block, weight n/k: the same bound as t ~ U, less variance
steps_per_block = 18  # about two a position
order = "confidence"  # MaskGIT's order per block: 28.2% vs 15.6% (bench/results/bd3lm_star_easy_probes.json)
