# BD3-LM on Shakespeare by character, one row per speech (data/shakespeare_char), 4L/128, 1000 steps of
# 32 rows: its bound, in blocks of 4 characters (the paper's LM1B L' = 4, 8, 16).
# Row (seed 1337): val NLL <= 2.270 (MDLM 2.514, ARLM 1.599), samples' NLL 3.82 under ARLM, 48 min on one thread.
base = "configs/bd3lm_shakespeare_char.py"  # everything else as there
out_dir = "out/bd3lm_shakespeare_char_block4"
# sampling (eval.py's unconditional samples)
block_len = 4
steps_per_block = 4  # one network call a character, as the others
