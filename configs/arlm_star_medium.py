# ARLM on star_medium (XLM Table 1 row; paper 77.2 / 82.1 at 12L/768): the autoregressive baseline with the
# star_easy recipe (ILM's phase 1 at 4L/64, 20k steps). Arms differ in length here, so the ceiling is not
# the third of star_easy. Rows: test 37.1 / 58.7 (seed 1337), 34.6 / 57.4 (seed 2); 15-25 min, shared thread.
out_dir = "out/arlm_star_medium"
dataset = "star/medium"
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
