# MDLM on maze_easy at twice mdlm_maze_easy.py's steps (32k + 8k, otherwise the same): FlexMDM's equal-budget
# comparison for flexmdm_maze_easy_40k.py (FlexMDM 91.5% there; MDLM 92.7% at 20k).
# Not yet run; success = eval.py valid_acc.
base = "configs/mdlm_maze_easy.py"  # everything else as there
out_dir = "out/mdlm_maze_easy_40k"
max_iters = 40000
phases = [dict(start=32000, batch_size=64, warmup_iters=0, learning_rate=6e-4, min_lr=2e-5, ema_decay=0.999)]
eval_interval = 4000
