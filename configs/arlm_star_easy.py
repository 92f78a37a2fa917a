# ARLM on star_easy (XLM Table 1 row; paper 33.1 / 81.7 at 12L/768): the autoregressive baseline, at its ceiling
# of about a third (after the centre it must pick one of 3 arms before it can see which leads to the goal).
# ILM's phase-1 recipe at 4L/64, 20k steps. Probe: test 34.0 / 50.5 in 12.5 min on one thread (2026-11-30).
out_dir = "out/arlm_star_easy"
dataset = "star/easy"
model = "arlm"
n_layer = 4
n_head = 4
n_embd = 64
batch_size = 32
max_iters = 20000
phases = []  # one phase (the default run has two)
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
eval_interval = 2000
best_metric = "val_seq_acc"
