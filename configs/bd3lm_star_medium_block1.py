# BD3-LM on star_medium, blocks of 1: one masked token a block, predicted from the clean past (an AR model);
# otherwise bd3lm_star_medium.py's recipe and sampler. Row (seed 1337): test 34.1 / 58.1 in confidence order,
# 33 min on one thread: the 1/3 plateau ARLM's seed 2 also stayed on (ARLM 72.9 / 33.9).
base = "configs/bd3lm_star_medium.py"  # everything else as there
out_dir = "out/bd3lm_star_medium_block1"
block_len = 1  # the 11-position canvas is 11 blocks of one token
steps_per_block = 1  # one token: one step
