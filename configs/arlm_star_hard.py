# ARLM on star_hard (degree 5, arms of 6-12 nodes, prompts up to 112 tokens).
#   python train.py configs/arlm_star_hard.py && python eval.py --ckpt=out/arlm_star_hard/ckpt.pt
# CPU-sized: 6 layers x 192 wide, ~30 minutes on 2 cores. XLM reports 25.2 / 43.7 at 12L/768.
out_dir = "out/arlm_star_hard"
dataset = "star/hard"
model = "arlm"
n_layer = 6
n_head = 6
n_embd = 192
batch_size = 64
max_iters = 4000
phases = []  # one phase (the default run has two)
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
warmup_iters = 200
eval_interval = 1000
best_metric = "val_seq_acc"
