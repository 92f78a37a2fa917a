# ILM on star_medium: arms of 3-6 nodes cross at a shared junction; the path is arm 0. From the goal end
# the junction's parent is ambiguous and from the source end its child is, so the model has to write
# both ends and meet in the middle, which insertion allows (XLM: ILM 100 / 100, ARLM 77.2 / 82.1).
#   OMP_NUM_THREADS=1 python train.py configs/ilm_star_medium.py && python eval.py --ckpt=out/ilm_star_medium/ckpt.pt
# CPU-sized: the star_easy network and schedule (phase 1; phase 2 as in configs/ilm_star_easy.py:
#   --resume --max_iters=20000 --learning_rate=6e-4 --min_lr=3e-5).
# Measured on 1 thread: phase 1 (10k steps, 30 min) test 4.3 / 31.4 (seq / tok %); phase 2 (36 min) test
# 6.9 / 32.6, val loss still falling (1.93 -> 1.79); phase 3 (`--resume --max_iters=30000
# --learning_rate=1.2e-3 --min_lr=3e-5`, 42 min) test 15.1 / 37.3 (val loss 1.70); phase 4 (`--resume
# --max_iters=40000 --learning_rate=2e-3 --min_lr=3e-5`, 44 min) test 35.8 / 49.2 (val loss 1.53): the
# climb speeds up at 32-35k steps, later and slower than star_easy's jump at 8-9k. Phase 5 adds an EMA of
# the weights (`--resume --max_iters=48000 --learning_rate=2.57e-3 --min_lr=3e-5 --ema_decay=0.999`: the LR
# restarts at 2e-4; 8k steps, 30 min): test 50.5 / 62.2, 48k steps and 181 min in all.
# Phase 6 (`--resume --max_iters=64000 --learning_rate=1.87e-3 --min_lr=3e-5 --ema_decay=0.999`: the LR
# restarts at 3e-4; 16k steps, 60 min): test 68.0 / 76.3, 64k steps and 242 min in all; val seq acc rose
# 0.52 -> 0.70 by 61k, then flat.
# Phase 7 (`--resume --max_iters=82000 --learning_rate=2.372e-3 --min_lr=3e-5 --ema_decay=0.999`, LR
# restarts at 3e-4; 18k steps, 76 min): test 75.3 / 80.9, 82k steps and 318 min in all; val 0.69 -> 0.77-0.79.
# Phase 8, star_easy's large-batch trick on two threads (`OMP_NUM_THREADS=2 ... --resume --max_iters=84500
# --batch_size=512 --warmup_iters=82000 --learning_rate=2e-4 --min_lr=2e-5 --ema_decay=0.999`; its first 500
# steps ran under --max_iters=87000 before a restart; 2.5k steps, ~42 min at 1.0 s/step): test 76.9 / 82.2
# (77.1 / 82.5 raw), val loss 1.2658 -> 1.2530 and still falling; 84.5k steps and ~360 min in all.
# Phase 9 (`OMP_NUM_THREADS=2 ... --resume --max_iters=86500 --batch_size=1024 --warmup_iters=84500
# --learning_rate=2.5e-4 --min_lr=2e-5 --ema_decay=0.999`; 2k steps, 63 min at 1.85 s/step): test 78.6 / 83.2
# (79.0 / 83.7 raw), val loss 1.2530 -> 1.2361 and still falling; 86.5k steps and ~423 min in all.
out_dir = "out/ilm_star_medium"
dataset = "star/medium"
model = "ilm"
n_layer = 4
n_head = 4
n_embd = 64
batch_size = 64
max_iters = 10000
learning_rate = 3e-3
min_lr = 3e-4
weight_decay = 0.1
warmup_iters = 100
eval_interval = 1000
best_metric = "val_seq_acc"
