# FlexMDM on star_easy (Kim et al. 2025: masked diffusion that also inserts masks, so it picks the length):
# mdlm_star_easy.py's 4L/64 recipe (neighbour mixing, absolute positions), 20k steps; models/flexmdm.py.
# Results: not yet run.
out_dir = "out/flexmdm_star_easy"
dataset = "star/easy"
model = "flexmdm"
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
steps = 32  # tau-leaping steps: the 8-token target is inserted and revealed over 32 network calls (+1)
