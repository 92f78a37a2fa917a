# FlexMDM on maze_hard (paper success 90.0%) with flexmdm_maze_easy.py's recipe and sampler: the row
# bench/results/maze/flexmdm_maze_hard_seed1337.json, test success 14.0%.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
out_dir = "out/flexmdm_maze_hard"
dataset = "maze/hard"
eval_interval = 4000  # an evaluation generates 200 paths of <= 128 cells in 256 steps (FlexMDM: ~4 min)
steps = 256  # two per position of the 128-cell limit
