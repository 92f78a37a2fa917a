# ARLM on star_easy: the autoregressive baseline the XLM paper shows failing at planning.
#   python train.py configs/arlm_star_easy.py && python eval.py --ckpt=out/arlm_star_easy/ckpt.pt
# CPU-sized: 4 layers x 128 wide (0.8M parameters), ~5 minutes on 2 cores. Expect ~1/3 sequence accuracy:
# after the centre the model must pick one of 3 arms before it can see which leads to the goal (the
# "Clever Hans" cheat of Bachmann & Nagarajan 2024), as XLM's 12L/768 ARLM does (33.1 / 81.7).
out_dir = "out/arlm_star_easy"
dataset = "star/easy"
model = "arlm"
n_layer = 4
n_head = 4
n_embd = 128
batch_size = 64
max_iters = 2000
phases = []  # one phase (the default run has two)
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
warmup_iters = 100
eval_interval = 500
best_metric = "val_seq_acc"
