# FlexMDM on maze_easy at twice flexmdm_maze_easy.py's steps (32k + 8k, otherwise the same): is FlexMDM
# below MDLM on the mazes (80.9 vs 92.7 easy) because 20k steps undertrain it? Its curve was still rising at 20k.
# Rows: test success 91.5% / 88.1% (seeds 1337 / 2; exact 39.8 / 37.2) against 80.9 / 73.2 at 20k: yes. ~70 min.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
out_dir = "out/flexmdm_maze_easy_40k"
max_iters = 40000
phases = [dict(start=32000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000
