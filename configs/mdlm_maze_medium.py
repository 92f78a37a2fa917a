# MDLM on maze_medium: FlexMDM's maze planning (Kim et al. 2025; data/maze/prepare.py), paper success 29.3%
# (FlexMDM 90.4) on its unpublished tier; mdlm_star_easy.py's recipe, 16k + 4k steps.
# Row (seed 1337): test success 29.2% (exact 24.2%), 65 min + 13 min eval on one shared thread of a 2-core EPYC.
base = "configs/mdlm_maze_easy.py"  # everything else as there
out_dir = "out/mdlm_maze_medium"
dataset = "maze/medium"
steps = 192  # sampler steps: two per position of the 97-position canvas
