# MLM on star_easy: BERT-style masking with confidence-ordered decoding (the XLM paper's MLM baseline).
#   OMP_NUM_THREADS=1 python train.py configs/mlm_star_easy.py && python eval.py --ckpt=out/mlm_star_easy/ckpt.pt
# CPU-sized: 4 layers x 128 wide (0.8M parameters), same network as configs/arlm_star_easy.py.
# XLM reports 100 / 100 (sequence / token accuracy) at 12L/768.
# Measured: 51 min on 1 thread of a shared 2-core CPU (0.6-1.5 s a step under others' runs); test
# 1.0 / 35.7 (seq / tok %): the copies (source, goal, repeated nodes) are learned, the graph lookups
# not yet. 3000 steps is far from XLM's 300k; on a GPU raise max_iters (and the width) first.
out_dir = "out/mlm_star_easy"
dataset = "star/easy"
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
