# ARLM on star_medium: the autoregressive baseline the XLM paper shows failing at planning.
#   python train.py configs/arlm_star_medium.py && python eval.py --ckpt=out/arlm_star_medium/ckpt.pt
# CPU-sized: 4 layers x 128 wide (0.8M parameters), ~6 minutes on 2 cores.
# Medium arms are paths through a shared junction; XLM reports 77.2 / 82.1 at 12L/768.
out_dir = "out/arlm_star_medium"
dataset = "star/medium"
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
