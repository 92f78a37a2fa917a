# FlexMDM on maze_hard: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 90.0%
# (MDM 24.2) on its unpublished tier; flexmdm_maze_easy.py's recipe (16k + 4k steps, the paper's sampler).
# Row (seed 1337): test success 14.0% (exact 1.1%; MDLM 4.6%), 84 + 52 min eval, one shared thread; still rising.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
# the base's sampler is the paper's (star_easy's insert-first one, with the expectation head: 0.2% valid on
# maze_medium, bench/results/star_superseded)
out_dir = "out/flexmdm_maze_hard"
dataset = "maze/hard"
eval_interval = 4000  # an evaluation generates 200 paths of <= 128 cells in 256 steps (FlexMDM: ~4 min)
steps = 256  # two per position of the 128-cell limit
