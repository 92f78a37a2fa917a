# BD3-LM on star_medium, blocks of 2; otherwise bd3lm_star_medium.py's recipe and sampler. Row (seed 1337):
# test 95.7 / 94.8 in confidence order, 33 min on one thread: the best block length here (4: 84.5, one: 77.7).
base = "configs/bd3lm_star_medium.py"  # everything else as there
out_dir = "out/bd3lm_star_medium_block2"
block_len = 2  # the 11-position canvas is blocks of 2, 2, 2, 2, 2 and 1
steps_per_block = 4  # about two a position
