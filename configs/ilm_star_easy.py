# ILM on star_easy: insert the path's tokens anywhere, goal end first, so the branch at the centre is never
# guessed (the planning failure of ARLM, configs/arlm_star_easy.py).
#   OMP_NUM_THREADS=1 python train.py configs/ilm_star_easy.py && python eval.py --ckpt=out/ilm_star_easy/ckpt.pt
# CPU-sized: 4 layers x 64 wide (0.2M parameters). RESULT/TIME: filled in below after the measured run.
out_dir = "out/ilm_star_easy"
dataset = "star/easy"
model = "ilm"
n_layer = 4
n_head = 4
n_embd = 64  # 128 wide learns no faster per step here and costs 2.5x per step on CPU
batch_size = 64
max_iters = 20000  # the insertion policy comes in late: 0% sequence accuracy until ~8k steps, then a jump
learning_rate = 3e-3  # 1e-2 learns slower; 1e-3 no faster per step
min_lr = 3e-4
warmup_iters = 100
eval_interval = 1000
best_metric = "val_seq_acc"
