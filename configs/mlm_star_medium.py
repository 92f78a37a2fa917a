# MLM on star_medium (XLM Table 1 row; paper 83.1 / 98.0 at 12L/768): the star_easy recipe (4L/64, neighbour
# mixing, absolute positions, 20k steps) and ILM's phase 2 (lr 6e-4 -> 2e-5 with an EMA) to 32k steps.
# Decoded one position a step, most confident first. Rows: test 72.2 / 75.4 (seed 1337, 45 min), 82.6 / 83.3
# (seed 2, 37 min), each on one thread of a 2-core AMD EPYC shared with another run.
out_dir = "out/mlm_star_medium"
dataset = "star/medium"
model = "mlm"
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
phases = [dict(start=20000, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
unmask = "fixed"  # with steps = 0: one position per step (the sampler does not change training)
