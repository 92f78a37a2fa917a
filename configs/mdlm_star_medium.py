# MDLM on star_medium (XLM Table 1 row; paper 36.5 / 90.6 at 12L/768): the star_easy recipe (4L/64, neighbour
# mixing, absolute positions, mask counts k ~ U{1..L}, 20k steps) and ILM's phase 2 (lr 6e-4 -> 2e-5 with an
# EMA) to 32k steps. Rows: test 65.3 / 71.3 (seed 1337, after the neighbour_mix fix; 63.9 before), 73.3 / 78.2 (seed 2, before).
out_dir = "out/mdlm_star_medium"
dataset = "star/medium"
model = "mdlm"
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
time_sampling = "count"  # k masks ~ U{1..L}, weight L/k: the same bound as t ~ U, less variance (models/mdlm.py)
steps = 44  # sampler steps: about one reveal a step for the 11-position canvas
order = "confidence"  # the surest masks first (star_easy: MDLM's random order lost 5-77 points)
