# ILM on star_hard (XLM Table 1 row; paper 97.5 / 98.2 at 12L/768): degree 5, arms of 6-12 nodes, prompts up to
# 112 tokens, paths up to 22. ILM's star_medium recipe (4L/64, six phases, the batch growing 32 -> 256) at twice its
# steps, for two threads: OMP_NUM_THREADS=2. Not yet run (earlier CPU attempts: bench/results/ilm_star_hard_probes.json).
out_dir = "out/ilm_star_hard"
dataset = "star/hard"
model = "ilm"
n_layer = 4
n_head = 4
n_embd = 64
batch_size = 32
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
max_iters = 118000
# star_medium's phases, every boundary at twice its step
phases = [dict(start=40000, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999),
          dict(start=72000, batch_size=64),
          dict(start=88000, batch_size=128),
          dict(start=100000),
          dict(start=112000, batch_size=256, learning_rate=4e-4)]
eval_interval = 2000
eval_gen_examples = 200
best_metric = "val_seq_acc"
