# MDLM on star_hard (XLM Table 1's hard row, paper 21.0) through ILM's curriculum (configs/ilm_star_hard_curriculum.py):
# the same phases, recipe and budget, from the shipped MDLM star_easy model; decoded as on star_medium (k masks
# ~ U{1..L}, the surest masks first, about three steps per canvas position).
base = "configs/ilm_star_hard_curriculum.py"
out_dir = "out/mdlm_star_hard_curriculum"
model = "mdlm"
init_from = "models/pretrained/mdlm_star_easy.pt"
time_sampling = "count"
steps = 64
order = "confidence"
ckpt_interval = 250  # a long row: lose little to a stop
