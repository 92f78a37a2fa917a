# FlexMDM on Shakespeare by character, one row per speech, 4L/128, 1000 steps: the row
# bench/results/shakespeare_char/flexmdm_shakespeare_char_seed1337.json (val NLL bound, samples scored by ARLM).
out_dir = "out/flexmdm_shakespeare_char"
model = "flexmdm"
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
# sampling (eval.py's unconditional samples)
steps = 256
