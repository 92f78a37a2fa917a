# BD3-LM on star_easy, blocks of 1: each block is one masked token predicted from the clean past, an AR model
# (models/bd3lm.py's block_len = 1 end); otherwise bd3lm_star_easy.py's recipe and sampler. Row (seed 1337):
# test 34.3 / 50.7 in confidence order, 41 min on one thread (ARLM 34.0 / 50.5).
base = "configs/bd3lm_star_easy.py"  # everything else as there
out_dir = "out/bd3lm_star_easy_block1"
block_len = 1  # the 9-position canvas is 9 blocks of one token
steps_per_block = 1  # one token: one step
