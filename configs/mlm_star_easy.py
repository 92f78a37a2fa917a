# MLM on star_easy (XLM Table 1 row; paper 100 / 100 at 12L/768): 4L/64 with neighbour mixing and absolute
# positions (models/mlm.py: without them this size learns no lookups), ILM's phase-1 recipe, 20k steps.
# Decoded one position a step, most confident first (XLM's threshold 0.1 gives 17.9 on the same weights).
# Rows (bench/results/star/): test 100.0 / 100.0 (seed 1337), 99.6 / 99.9 (seed 2); 13-22 min on one thread.
out_dir = "out/mlm_star_easy"
dataset = "star/easy"
model = "mlm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 20000
phases = []  # one phase (the default run has two)
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
eval_interval = 2000
best_metric = "val_seq_acc"
unmask = "fixed"  # with steps = 0: one position per step (the sampler does not change training)
