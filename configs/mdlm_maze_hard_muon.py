# MDLM on maze_hard (paper success 24.2%) beside flexmdm_maze_hard_muon.py, at mdlm_maze_medium_muon.py's
# recipe and budget (Muon, batch 128, lr 6e-3 -> 6e-5, an EMA, 12k steps). Its row (to run; about 2 h on two
# ranks of this 2-core machine, then the test evaluation): bench/results/maze/mdlm_maze_hard_muon_seed1337.json.
base = "configs/mdlm_maze_medium_muon.py"  # the recipe; the network and sampler of mdlm_maze_easy.py
out_dir = "out/mdlm_maze_hard_muon"
dataset = "maze/hard"
steps = 256  # sampler steps: two per position of the 128-cell limit (as mdlm_maze_hard.py)
eval_interval = 2000  # a hard evaluation costs about twice a medium one: six of them
