# FlexMDM on maze_medium (paper success 90.4%) with the star speedrun's recipe instead of flexmdm_maze_easy.py's:
# Muon, batch 128, lr 6e-3 -> 6e-5, an EMA of the weights, 12k steps. Its 6k-step probe reached 61.8% success on
# 1,000 test problems (bench/results/maze_probes.json). Row: test success 75.5% (exact 20.2%), 106 min (1 thread),
# bench/results/maze/flexmdm_maze_medium_muon_seed1337.json; shipped as models/pretrained/flexmdm_maze_medium.pt.
base = "configs/flexmdm_maze_medium.py"  # the network, data and sampler as there
out_dir = "out/flexmdm_maze_medium_muon"
optimizer = "muon"  # the blocks' matrices on Muon, AdamW for embeddings, heads and norms
batch_size = 128
learning_rate = 6e-3
min_lr = 6e-5
warmup_iters = 100
ema_decay = 0.995  # evaluate (and ship) the average of the last ~200 steps
phases = []  # no phase 2: one cosine over the whole run
max_iters = 12000
eval_interval = 1000
eval_gen_examples = 100  # 100 generated paths per evaluation: each costs ~2 min on one CPU thread
ckpt_interval = 250  # a stop loses at most ~4 minutes
