# Edit Flows (models/editflow.py) on star_easy from x0 = 8 masks: reproduces bench/results/star/editflow_star_easy_
# seed1337.json (--seed=1337, test 99.96 / 99.98 in 29 min on a CPU thread) and models/pretrained/editflow_star_easy.pt.
# flexmdm_star_easy.py's recipe: 4L/64, neighbour mixing, absolute positions; 20k steps, then 8k with an EMA.
out_dir = "out/editflow_star_easy"
dataset = "star/easy"
model = "editflow"
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
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 2000
best_metric = "val_seq_acc"
steps = 32  # tau-leaping steps: 8 masks substituted (or deleted) over 32 network calls
mask_order = "confidence"  # the surest masks first, as their argmax: bench/results/editflow_star_easy_probes.json
