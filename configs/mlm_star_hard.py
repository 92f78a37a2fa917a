# MLM on star_hard (masked LM with confidence-ordered decoding): degree 5, arms of 6-12 nodes, prompts up to
# 112 tokens, targets up to 22 (the canvas): the hardest planning task.
#   python train.py configs/mlm_star_hard.py && python eval.py --ckpt=out/mlm_star_hard/ckpt.pt
# Sized like configs/arlm_star_hard.py: 6 layers x 192 wide; a GPU run (not trained on CPU: at ~1 s a step
# for the small star models, this would take hours). XLM reports 25.3 / 79.6 at 12L/768 after 300k steps.
out_dir = "out/mlm_star_hard"
dataset = "star/hard"
model = "mlm"
n_layer = 6
n_head = 6
n_embd = 192
batch_size = 64
max_iters = 20000  # long paths take many more steps to plan than easy/medium
phases = []  # one phase (the default run has two)
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
warmup_iters = 500
eval_interval = 2000
best_metric = "val_seq_acc"
unmask = "threshold"  # XLM's star decoding: top probability, cumulative uncertainty below 0.1
threshold = 0.1
