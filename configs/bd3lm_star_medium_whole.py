# BD3-LM on star_medium, one block: MDLM but with the prompt blind to the canvas (models/bd3lm.py);
# otherwise bd3lm_star_medium.py's recipe and sampler. Row (seed 1337): test 77.7 / 79.5 in confidence order,
# 36 min on one thread (MDLM 63.9 / 73.3).
base = "configs/bd3lm_star_medium.py"  # everything else as there
out_dir = "out/bd3lm_star_medium_whole"
block_len = 0  # one block: the whole 11-position canvas
steps_per_block = 22  # about two a position
