# MDLM on maze_hard: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 24.2%
# (FlexMDM 90.0) on its unpublished tier; mdlm_star_easy.py's recipe, 16k + 4k steps.
# Row (seed 1337): test success 4.6% (exact 3.9%; FlexMDM 14.0%), 104 min + 30 min eval, one shared thread, 2-core EPYC.
out_dir = "out/mdlm_maze_hard"
dataset = "maze/hard"
model = "mdlm"
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
batch_size = 32
max_iters = 20000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
# then ILM's phase 2: a lower learning rate, batch 64 and an EMA of the weights
phases = [dict(start=16000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000  # an evaluation generates 200 paths of <= 128 cells in 256 steps (FlexMDM: ~4 min)
best_metric = "val_seq_acc"  # the reference is the shortest path, the only one without a detour; eval.py adds valid_acc
time_sampling = "count"  # k masks ~ U{1..L}, weight L/k: the same bound as t ~ U, less variance (models/mdlm.py)
steps = 256  # sampler steps: two per position of the 129-position canvas
order = "confidence"  # the surest masks first (random order lost most of star_easy, mdlm_star_easy.py)
