# ARLM on star_hard (XLM Table 1's hard row, paper 25.2) through ILM's curriculum (configs/ilm_star_hard_curriculum.py):
# the same phases, recipe and budget, from the shipped ARLM star_medium model (its star_easy model has the plain
# network; this one has neighbour mixing and absolute positions, as ILM's start does).
base = "configs/ilm_star_hard_curriculum.py"
out_dir = "out/arlm_star_hard_curriculum"
model = "arlm"
init_from = "models/pretrained/arlm_star_medium.pt"
ckpt_interval = 250  # a long row: lose little to a stop
