# Edit Flows (models/editflow.py) on star_medium from x0 = 10 masks (shorter targets delete the rest), the star_easy
# recipe to 32k steps: bench/results/star/editflow_star_medium_seed1337.json (--seed=1337, test 84.7 / 93.8, 79 min on
# a shared CPU thread; 66.6 / 85.6 before the neighbour_mix fix: bench/results/star_superseded/).
out_dir = "out/editflow_star_medium"
dataset = "star/medium"
model = "editflow"
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
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
steps = 40  # tau-leaping steps: 10 masks (the longest target) substituted or deleted over 40 network calls
mask_order = "confidence"  # the surest masks first, as their argmax: bench/results/editflow_star_easy_probes.json
