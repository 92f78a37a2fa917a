# MDLM on maze_hard: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 24.2%
# (FlexMDM 90.0) on its unpublished tier; mdlm_star_easy.py's recipe, 16k + 4k steps.
# Row (seed 1337): test success 4.6% (exact 3.9%; FlexMDM 14.0%), 104 min + 30 min eval, one shared thread, 2-core EPYC.
base = "configs/mdlm_maze_easy.py"  # everything else as there
out_dir = "out/mdlm_maze_hard"
dataset = "maze/hard"
eval_interval = 4000  # an evaluation generates 200 paths of <= 128 cells in 256 steps (FlexMDM: ~4 min)
steps = 256  # sampler steps: two per position of the 129-position canvas
