# ILM on star_medium, the speedrun record: >= 95% test sequence accuracy in under 30 minutes on a 2-core CPU,
#   python train.py configs/ilm_star_medium_speedrun.py --nproc=2
# configs/ilm_star_easy_speedrun.py's recipe (Muon, neighbour mixing, batch 128, an EMA), run longer.
base = "configs/ilm_star_easy_speedrun.py"
out_dir = "out/ilm_star_medium_speedrun"
dataset = "star/medium"
lr_schedule = "cosine"  # as its record was measured (the easy record moved to wsd later)
max_iters = 4000
eval_interval = 500
