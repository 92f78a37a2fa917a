# MLM on star_easy, the speedrun record (#46): >= 99% test sequence accuracy in under 5 minutes on a 2-core CPU with
# two ranks, python bench/star_row.py configs/mlm_star_easy_speedrun.py --seed=S --nproc=2 --out=bench/results/speedrun
# ILM's speedrun recipe, every row's whole canvas masked, decoded in one pass (speedrun_probes.json).
base = "configs/ilm_star_easy_speedrun.py"  # Muon, neighbour mixing + absolute positions, batch 128, lr 6e-3, EMA
out_dir = "out/mlm_star_easy_speedrun"
model = "mlm"
# Random masking rates show the model the previous node, from which it learns the forward lookup and stalls at
# one arm in three (val 0.30-0.34 to 4000 steps); with the whole canvas masked only the backward chain from the
# goal is left to learn: 100% val at step 1000 (seed 1337), 1250 (seed 2). A one-pass predictor, not Mask-Predict.
min_mask_rate = 1.0
lr_schedule = "cosine"  # as its record was measured (ILM's moved to wsd later)
max_iters = 1800
eval_interval = 600
unmask = "fixed"
steps = 1  # one pass: every position its argmax; partly written canvases were never trained
