# ILM on star_medium, one command (XLM Table 1 row; paper 100 / 100 at 12L/768): 4L/64, six phases, 59k steps.
# Rows: test 99.1 / 99.3 (seed 1337, 149 min), 93.5 / 93.5 (seed 2, 122 min, still rising: val 0.945 at the end),
# each on one thread of a 2-core AMD EPYC shared with 1-3 other runs. The batch grows 32 -> 256.
out_dir = "out/ilm_star_medium"
dataset = "star/medium"
model = "ilm"
n_layer = 4
n_head = 4
n_embd = 64
batch_size = 32
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.3
warmup_iters = 100
max_iters = 59000
# each later phase restarts the cosine (no warmup) from its own learning_rate, with an EMA of the weights
phases = [dict(start=20000, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999),
          dict(start=36000, batch_size=64),
          dict(start=44000, batch_size=128),
          dict(start=50000),
          dict(start=56000, batch_size=256, learning_rate=4e-4)]
eval_interval = 1000
best_metric = "val_seq_acc"
