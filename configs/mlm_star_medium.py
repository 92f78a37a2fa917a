# MLM on star_medium (masked LM with confidence-ordered decoding): asymmetric arms through a shared junction,
# targets of 4-10 tokens, so the model must also learn where its target ends (pad fills the rest
# of the 10-token canvas).
#   OMP_NUM_THREADS=1 python train.py configs/mlm_star_medium.py && python eval.py --ckpt=out/mlm_star_medium/ckpt.pt
# CPU-sized: 4 layers x 128 wide (0.8M parameters), same network as configs/arlm_star_medium.py.
# XLM reports 83.1 / 98.0 (sequence / token accuracy) at 12L/768.
# Measured: 31 min on 1 thread of a shared 2-core CPU (0.6-1.5 s a step under others' runs); test
# 4.7 / 31.8 (seq / tok %): the copies (source, goal, repeated nodes) are learned, the graph lookups
# not yet. 3000 steps is far from XLM's 300k; on a GPU raise max_iters (and the width) first.
out_dir = "out/mlm_star_medium"
dataset = "star/medium"
model = "mlm"
n_layer = 4
n_head = 4
n_embd = 128
batch_size = 64
max_iters = 3000  # a masked model sees ~half the canvas as targets per step: it needs more steps than ARLM
phases = []  # one phase (the default run has two)
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
warmup_iters = 100
eval_interval = 500
best_metric = "val_seq_acc"
unmask = "threshold"  # XLM's star decoding: top probability, cumulative uncertainty below 0.1
threshold = 0.1
