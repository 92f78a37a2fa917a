# FlexMDM on maze_hard (paper success 90.0%) with flexmdm_maze_medium_muon.py's recipe: Muon, batch 128,
# lr 6e-3 -> 6e-5, an EMA of the weights, 12k steps. Its row (to run; about 2 h on two ranks of this 2-core
# machine, then the test evaluation): bench/results/maze/flexmdm_maze_hard_muon_seed1337.json.
base = "configs/flexmdm_maze_hard.py"  # the network, data and sampler as there
out_dir = "out/flexmdm_maze_hard_muon"
optimizer = "muon"  # the blocks' matrices on Muon, AdamW for embeddings, heads and norms
batch_size = 128
learning_rate = 6e-3
min_lr = 6e-5
warmup_iters = 100
ema_decay = 0.995  # evaluate (and ship) the average of the last ~200 steps
phases = []  # no phase 2: one cosine over the whole run
max_iters = 12000
eval_interval = 2000  # a hard evaluation costs about twice a medium one: six of them
eval_gen_examples = 100
ckpt_interval = 250
