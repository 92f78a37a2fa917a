# BD3-LM on Shakespeare by character, one row per speech (data/shakespeare_char), 4L/128, 1000 steps of
# 32 rows: its bound, in blocks of 8 characters (the paper's LM1B L' = 4, 8, 16).
# Row (seed 1337): val NLL <= 2.368 (MDLM 2.514, ARLM 1.599), samples' NLL 3.88 under ARLM, 49 min on one thread.
base = "configs/bd3lm_shakespeare_char.py"  # everything else as there
out_dir = "out/bd3lm_shakespeare_char_block8"
# sampling (eval.py's unconditional samples)
block_len = 8
steps_per_block = 8  # one network call a character, as the others
