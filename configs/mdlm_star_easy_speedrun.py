# MDLM on star_easy, the speedrun record (#46): >= 99% test sequence accuracy in under 5 minutes on a 2-core CPU with
# two ranks, python bench/star_row.py configs/mdlm_star_easy_speedrun.py --seed=S --nproc=2 --out=bench/results/speedrun
# ILM's speedrun recipe, trained at t = 1 only (the whole canvas masked), decoded in one pass (speedrun_probes.json).
base = "configs/ilm_star_easy_speedrun.py"  # Muon, neighbour mixing + absolute positions, batch 128, lr 6e-3, EMA
out_dir = "out/mdlm_star_easy_speedrun"
model = "mdlm"
# Training times t ~ U[t_min, 1], t_min = 1: every row at t = 1 (the ELBO's all-mask term only, weight 1; the
# logged val loss is still the bound). Lower t shows the model the previous node, from which it learns the
# forward lookup and stalls at one arm in three (val 0.31-0.375 at 750-1250 with 'count'); at t = 1 only the
# backward chain from the goal is left to learn: 100% val at step 1000 (seed 1337), 1200 (seed 2); test 100%.
time_sampling = "continuous"
t_min = 1.0
lr_schedule = "cosine"  # as its record was measured (ILM's moved to wsd later)
max_iters = 1800  # 100% val from 1000-1200 in the probes (MLM the same: 1000, 1250); margin for other seeds
eval_interval = 600
steps = 1  # one pass: every position its argmax (order 'confidence'); partly written canvases were never trained
order = "confidence"
