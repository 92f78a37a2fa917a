# ILM on star_hard (XLM Table 1's hard row, paper 97.5) through a curriculum: the shipped star_easy speedrun model
# grown to hard's 56 node labels, then easy- and medium-shaped graphs over those labels, then hard mixed in
# (python data/star/prepare.py writes all three). The speedrun recipe otherwise; probes: star_hard_curriculum_probes.json.
# Row: test 99.2 / 99.3 (seed 1337), bench/results/star/ilm_star_hard_curriculum_seed1337.json.
out_dir = "out/ilm_star_hard_curriculum"
dataset = "star/hard"  # validation, test and the checkpoint's data throughout
model = "ilm"
init_from = "models/pretrained/ilm_star_easy_speedrun.pt"  # its lookups carry over: easy_n56 100% val at 750 steps
n_layer = 4
n_head = 4
n_embd = 64
neighbour_mix = True
abs_pos = True
optimizer = "muon"
batch_size = 128
learning_rate = 6e-3
min_lr = 6e-5
weight_decay = 0.3
warmup_iters = 100
ema_decay = 0.995
max_iters = 16000
# each phase restarts its warmup and cosine
train_data = "star/easy_n56"  # the new labels first, on 34-token rows (~4x cheaper steps than hard's 134)
phases = [dict(start=1000, train_data="star/medium_n56"),  # the source is no longer the junction
          dict(start=3000, train_data="star/medium_n56:1,star/hard:3")]  # medium kept in, so nothing is forgotten
eval_interval = 1000
eval_examples = 200
eval_gen_examples = 200
best_metric = "val_seq_acc"
