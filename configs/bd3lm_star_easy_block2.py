# BD3-LM on star_easy, blocks of 2, between ARLM (block 1) and the block-4 row. Otherwise
# bd3lm_star_easy.py's recipe and sampler. Row (seed 1337): test 35.5 / 51.6 in confidence order, 34 min on
# one thread (ARLM 34.0).
base = "configs/bd3lm_star_easy.py"  # everything else as there
out_dir = "out/bd3lm_star_easy_block2"
block_len = 2  # the 9-position canvas (8 targets + the end) is blocks of 2, 2, 2, 2 and 1
steps_per_block = 4  # about two a position
