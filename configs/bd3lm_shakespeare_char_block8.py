# BD3-LM on Shakespeare by character, one row per speech (data/shakespeare_char), 4L/128, 1000 steps of
# 32 rows: its bound, in blocks of 8 characters (the paper's LM1B L' = 4, 8, 16).
# Row (seed 1337): val NLL <= 2.368 (MDLM 2.514, ARLM 1.599), samples' NLL 3.88 under ARLM, 49 min on one thread.
out_dir = "out/bd3lm_shakespeare_char_block8"
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
block_len = 8
steps_per_block = 8  # one network call a character, as the others
