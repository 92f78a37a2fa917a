# ILM on star_easy, one command (XLM Table 1 row; paper 100 / 100 at 12L/768), 4L/64, 24k steps.
# Expected: test 100.0 / 100.0 (seed 2: 99.9 / 100.0), ~21 min on one thread of the 2-core CPU (2026-11-24).
# Results and lab notes: bench/results/star/ and bench/results/ilm_star_easy_probes.json.
out_dir = "out/ilm_star_easy"
dataset = "star/easy"
model = "ilm"
n_layer = 4
n_head = 4
n_embd = 64  # 128 wide learns no faster per step here and costs 2.5x per step on CPU
batch_size = 32  # at a fixed number of examples, more and noisier steps learn faster here
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3  # 0.3 > 0.1 > 0 on the probes
warmup_iters = 100
max_iters = 24000
# phase 2 doubles the batch, restarts the cosine at 6e-4 and averages the weights (EMA)
phases = [dict(start=20000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 1000
best_metric = "val_seq_acc"
