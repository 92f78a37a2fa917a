# ILM on OpenWebText, packed 1024-token windows of the GPT-2 token stream (the nanoGPT/MDLM setting).
# The size of the literature: 12 layers, 768 wide, 12 heads (~85M + embeddings), global batch 512.
#   python data/openwebtext/prepare.py        # needs the network (Hugging Face hub)
#   python train.py configs/ilm_owt.py --nproc=8 --compile=True
# A GPU job: on one 8-GPU node, micro-batches of 64 per GPU need no accumulation.
out_dir = "out/ilm_owt"
dataset = "openwebtext"
model = "ilm"
block_size = 1024
n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.0
batch_size = 512
micro_batch_size = 64
max_iters = 1_000_000  # MDLM trains LM1B/OWT for 1M steps at batch 512
phases = []  # one phase (the default run has two)
learning_rate = 3e-4
min_lr = 3e-4
lr_schedule = "constant"  # MDLM: linear warmup then constant
warmup_iters = 2500
weight_decay = 0.0
beta2 = 0.999
ema_decay = 0.9999  # MDLM evaluates the EMA weights
eval_interval = 10_000
eval_examples = 10_000
eval_gen_examples = 0
eval_batch_size = 64
temperature = 1.0  # sampled insertions for unconditional text
top_p = 0.9
