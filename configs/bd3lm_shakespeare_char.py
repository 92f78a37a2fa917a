# BD3-LM on Shakespeare by character, one row per speech (data/shakespeare_char), 4L/128, 1000 steps of
# 32 rows: its bound, in blocks of 16 characters.
# Row (seed 1337): val NLL <= 2.309 (MDLM 2.514, ARLM 1.599), samples' NLL 3.64 under ARLM, 47 min on one thread.
out_dir = "out/bd3lm_shakespeare_char"
model = "bd3lm"
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
block_len = 16
steps_per_block = 16  # one network call a character, as the others
