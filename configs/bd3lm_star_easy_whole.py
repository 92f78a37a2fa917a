# BD3-LM on star_easy, one block, the whole canvas: MDLM but with the prompt blind to the canvas (models/bd3lm.py);
# mdlm_star_easy.py's recipe. Row (seed 1337): test 84.8 / 95.7 in confidence order, 36 min on one thread; it
# left the plateau (val loss 0.9) only at 24k, in phase 2, and was still rising at 28k (MDLM 100.0).
base = "configs/bd3lm_star_easy.py"  # everything else as there
out_dir = "out/bd3lm_star_easy_whole"
block_len = 0  # one block: the whole 9-position canvas
steps_per_block = 18  # about two a position
