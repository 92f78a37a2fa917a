"""A row's logits do not depend on the other rows of its batch.

    python -m pytest -q tests/test_batch_independence.py

Rows with shorter prompts end before the batch's width; nothing past a row's own end may reach it (the
neighbour mix once read the next row position's embedding there). Walks every model file whose Model lays
rows out as prompt + canvas (layout, canvas_logits: mdlm.py, mlm.py and their copies); ilm.py, bd3lm.py,
flexmdm.py and editflow.py check the same in their own tests, with their own layouts."""
import dataclasses

import pytest
import torch

import engine

CANVAS_MODELS = [n for n in engine.model_names()
                 if hasattr(engine.model_module(n).Model, "layout") and hasattr(engine.model_module(n).Model, "canvas_logits")]


@pytest.mark.parametrize("neighbour_mix", [True, False])
@pytest.mark.parametrize("name", CANVAS_MODELS)
def test_logits_of_a_row_alone_equal_its_logits_in_a_mixed_batch(name, neighbour_mix):
    module = engine.model_module(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    keys = dict(vocab_size=30, pad_id=0, mask_id=29, block_size=40, max_prompt_len=12, max_target_len=8,
                n_layer=2, n_head=2, n_embd=32, neighbour_mix=neighbour_mix, abs_pos=True)
    torch.manual_seed(0)
    model = module.Model(module.Config(**{k: v for k, v in keys.items() if k in fields})).eval()
    L = model.canvas_len if hasattr(model, "canvas_len") else keys["max_target_len"]
    prompt_lens = torch.tensor([12, 5, 9, 3])  # different lengths: most rows end before the batch's width
    cidx, keep, W = model.layout(prompt_lens, L, "cpu")
    xt = torch.randint(1, 29, (4, W))
    xt[torch.rand(4, W) < 0.3] = 29  # some masks
    args = {"t": torch.full((4,), 0.5)} if "t" in model.canvas_logits.__code__.co_varnames else {}
    with torch.no_grad():
        mixed = model.canvas_logits(xt, cidx, keep, **args)  # (B, L, V)
        for i in range(4):
            c1, k1, W1 = model.layout(prompt_lens[i:i + 1], L, "cpu")
            one = {k: v[i:i + 1] for k, v in args.items()}
            alone = model.canvas_logits(xt[i:i + 1, :W1], c1, k1, **one)  # (1, L, V)
            finite = torch.isfinite(alone)
            assert torch.equal(finite, torch.isfinite(mixed[i:i + 1]))
            assert torch.allclose(alone[finite], mixed[i:i + 1][finite], atol=1e-5), \
                f"row {i}: {(alone[finite] - mixed[i:i + 1][finite]).abs().max():.3g}"
