# FlexMDM on maze_medium: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 90.4%
# (MDM 29.3) on its unpublished tier; flexmdm_maze_easy.py's recipe (16k + 4k steps, the paper's sampler).
# Row (seed 1337): test success 17.4% (exact 1.5%; MDLM 29.2%), 52 + 22 min eval, one shared thread; still rising.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
# the base's sampler is the paper's (star_easy's insert-first one, with the expectation head: 0.2% valid on
# maze_medium, bench/results/star_superseded)
out_dir = "out/flexmdm_maze_medium"
dataset = "maze/medium"
steps = 192  # two per position of the 96-cell limit
