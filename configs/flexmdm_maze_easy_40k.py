# FlexMDM on maze_easy at twice flexmdm_maze_easy.py's steps (32k + 8k): the rows
# bench/results/maze/flexmdm_maze_easy_40k_seed*.json, test success 91.5% / 88.1% (seeds 1337 / 2).
base = "configs/flexmdm_maze_easy.py"  # everything else as there
out_dir = "out/flexmdm_maze_easy_40k"
max_iters = 40000
phases = [dict(start=32000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000
