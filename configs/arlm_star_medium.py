# ARLM on star_medium (XLM Table 1 row; paper 77.2 / 82.1 at 12L/768): the star_easy recipe (ILM's phase 1 at
# 4L/64, 20k steps), the previous token's embedding mixed in and learned absolute positions (as MDLM's and MLM's
# star configs). Rows: test 72.9 / 76.4 (seed 1337), 33.9 / 57.4 (seed 2: still on the 1/3 plateau at 20k,
# which seed 1337 left at 12k); 16 min each on one thread of a 2-core AMD EPYC.
out_dir = "out/arlm_star_medium"
dataset = "star/medium"
model = "arlm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True  # the goal's predecessor is one lookup: bench/results/star_medium_probes.json
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
