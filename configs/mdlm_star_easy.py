# MDLM on star_easy (XLM Table 1 row; paper 100 / 100 at 12L/768): 4L/64 with neighbour mixing and absolute
# positions, mask counts k ~ U{1..L}, ILM's phase 1 for 20k steps then its phase 2 for 8k; confidence order.
# Rows: test 100.0 / 100.0 (seeds 1337, 2; MDLM's random order: 100.0, 94.8); ~40 min on one shared thread.
out_dir = "out/mdlm_star_easy"
dataset = "star/easy"
model = "mdlm"
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
time_sampling = "count"  # k masks ~ U{1..L}, weight L/k: the same bound as t ~ U, less variance (models/mdlm.py)
steps = 32  # sampler steps: about one reveal a step for the 9-position canvas
order = "confidence"  # the surest masks first: MDLM's random order gives 22.5 / 95.0 on the same weights
