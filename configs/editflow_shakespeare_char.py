# Edit Flows (models/editflow.py) on Shakespeare by character, one row per speech, from the empty sequence (the
# paper's insertion-only flow): reproduces bench/results/shakespeare_char/editflow_shakespeare_char_seed1337.json
# (--seed=1337: val aligned bound 2.570 per unit, 7.7 min on a CPU thread) and bench/results/edit_stats_editflow_*.
out_dir = "out/editflow_shakespeare_char"
model = "editflow"
dataset = "shakespeare_char"
n_layer = 4
n_head = 4
n_embd = 128
batch_size = 32
max_iters = 1000  # 32k rows: a little under one pass over the 35,887 training rows
phases = []  # one phase (the default run has two)
learning_rate = 2e-3
min_lr = 2e-4
weight_decay = 0.1
warmup_iters = 100
eval_interval = 250
eval_examples = 512
eval_gen_examples = 0
eval_batch_size = 128
x0 = "empty"  # the noise starts from nothing: an insertion-only flow
# sampling (eval.py's unconditional samples)
steps = 256
