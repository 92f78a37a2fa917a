# MDLM on star_easy (XLM Table 1 row; paper 100 / 100 at 12L/768): 4L/64 with neighbour mixing and absolute
# positions (models/mdlm.py: without them this size learns no lookups), ILM's phase-1 recipe, 20k steps.
# Rows (bench/results/star/): test 96.6 / 99.1 (seed 1337) but 5.0 / 37.9 (seed 2, lookups not learned by 20k
# steps): not yet robust. ~14-23 min on one thread of the 2-core CPU.
out_dir = "out/mdlm_star_easy"
dataset = "star/easy"
model = "mdlm"
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
time_sampling = "count"  # k masks ~ U{1..L}, weight L/k: the same bound as t ~ U, less variance (models/mdlm.py)
steps = 32  # sampler steps: about one reveal a step for the 9-position canvas
