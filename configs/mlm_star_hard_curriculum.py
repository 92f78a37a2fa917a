# MLM on star_hard (XLM Table 1's hard row, paper 25.3) through ILM's curriculum (configs/ilm_star_hard_curriculum.py):
# the same phases, recipe and budget, from the shipped MLM star_easy model; decoded as on star_medium (one
# position a step, the most confident first).
base = "configs/ilm_star_hard_curriculum.py"
out_dir = "out/mlm_star_hard_curriculum"
model = "mlm"
init_from = "models/pretrained/mlm_star_easy.pt"
unmask = "fixed"
steps = 0
ckpt_interval = 250  # a long row: lose little to a stop
