# FlexMDM on maze_medium (paper success 90.4%) with flexmdm_maze_easy.py's recipe and sampler: the row
# bench/results/maze/flexmdm_maze_medium_seed1337.json, test success 17.4%.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
out_dir = "out/flexmdm_maze_medium"
dataset = "maze/medium"
steps = 192  # two per position of the 96-cell limit
