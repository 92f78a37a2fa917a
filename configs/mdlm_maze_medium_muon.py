# MDLM on maze_medium at flexmdm_maze_medium_muon.py's recipe and budget (Muon, batch 128, lr 6e-3 -> 6e-5, an EMA,
# 12k steps): the MDLM row beside the FlexMDM one, bench/results/maze/mdlm_maze_medium_muon_seed1337.json (to run).
base = "configs/mdlm_maze_medium.py"  # the network, data and sampler as there
out_dir = "out/mdlm_maze_medium_muon"
optimizer = "muon"  # the blocks' matrices on Muon, AdamW for embeddings, heads and norms
batch_size = 128
learning_rate = 6e-3
min_lr = 6e-5
warmup_iters = 100
ema_decay = 0.995  # evaluate (and ship) the average of the last ~200 steps
phases = []  # no phase 2: one cosine over the whole run
max_iters = 12000
eval_interval = 1000
eval_gen_examples = 100  # 100 generated paths per evaluation
ckpt_interval = 250  # a stop loses at most ~4 minutes
