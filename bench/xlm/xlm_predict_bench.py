"""Measure XLM's own predictor (sampler) throughput on CPU on the star test prompts.

XLM's ``xlm job_type=generate`` hard-codes ``.to("cuda")`` for batches and
loads models with move_to_device="cuda" (xlm/commands/lightning_generate.py),
so it cannot run on a CPU-only box.  This script is a CPU copy of that flow:
it is a Hydra app on XLM's own config tree (same overrides as ``xlm``), builds
the global components, datamodule (predict stage = star *_test_pred split
with the model's seq2seq *pred* collator) and the Harness exactly like
xlm/commands/lightning_train.py, then calls ``harness.predictor.predict(batch)``
(the real sampler: e.g. ilm.predictor_ilm.ILMPredictorWithStoppingClassification)
under torch.inference_mode() and times it.

Extra (non-XLM) keys, passed with '+':
  +bench.num_examples=256     examples to time (after +bench.warmup_batches)
  +bench.warmup_batches=1
  +bench.state_dict=PATH      optional torch.save(model.state_dict()) to load (else fresh init)
  +bench.tag=ilm

Run from the data root (bench/.work/xlm_run) with DATA_DIR set, e.g.
  python xlm_predict_bench.py experiment=star_easy_ilm model.d_model=128 model.num_layers=2 \
      model.nhead=2 per_device_batch_size=64 num_dataloader_workers=0 dataloader_prefetch_factor=null \
      dataloader_pin_memory=false +bench.num_examples=256
Prints: XLM_PRED_RESULT model=... batch=... examples=... examples_per_s=... ...
"""
import os
import resource
import time
from typing import Any, Dict

import torch

import xlm.commands.lightning_main as lm  # registers resolvers + Hydra search-path plugins
import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(**lm._HYDRA_PARAMS)
def main(cfg: DictConfig) -> None:
    bench = cfg.get("bench", {}) or {}
    num_examples = int(bench.get("num_examples", 256))
    warmup_batches = int(bench.get("warmup_batches", 1))
    state_dict_path = bench.get("state_dict", None)
    tag = bench.get("tag", "xlm")
    t0 = time.time()
    if cfg.get("seed"):
        from lightning import seed_everything
        seed_everything(cfg.seed)
    global_components: Dict[str, Any] = hydra.utils.instantiate(cfg.global_components)
    OmegaConf.clear_resolver("global_components")
    OmegaConf.register_new_resolver("global_components", lambda x: global_components[x])
    datamodule = hydra.utils.instantiate(cfg.datamodule)
    tokenizer = datamodule.tokenizer
    OmegaConf.clear_resolver("tokenizer")
    OmegaConf.register_new_resolver("tokenizer", lambda x: getattr(tokenizer, x))
    OmegaConf.clear_resolver("datamodule")
    OmegaConf.register_new_resolver("datamodule", lambda x: getattr(datamodule, x))
    datamodule.no_trainer_mode = True
    datamodule.prepare_data()
    datamodule.setup("predict")
    module = hydra.utils.instantiate(
        cfg.lightning_module, cfg, tokenizer=tokenizer, datamodule=datamodule,
        _recursive_=False,
    )
    if state_dict_path:
        sd = torch.load(state_dict_path, map_location="cpu", weights_only=True)
        missing, unexpected = module.model.load_state_dict(sd, strict=True), None
        print(f"loaded {state_dict_path}")
    module.eval()
    predictor = module.predictor
    nparams = sum(p.numel() for p in module.model.parameters())
    dls = datamodule.predict_dataloader()
    dl = dls[0] if isinstance(dls, list) else dls
    setup_s = time.time() - t0

    n_done = 0
    n_batches = 0
    t_meas = 0.0
    cpu_meas = 0.0
    gen_tokens = 0
    exact = 0
    per_batch = []
    with torch.inference_mode():
        for bi, batch in enumerate(dl):
            if bi == 0:
                print("FIRST_PRED_BATCH input_ids[0]:", batch["input_ids"][0].tolist())
                print("FIRST_PRED_BATCH token_type_ids[0]:", batch["token_type_ids"][0].tolist())
                print("FIRST_PRED_BATCH decoded[0]:", tokenizer.decode(batch["input_ids"][0].tolist()))
                print("FIRST_PRED_BATCH target[0]:", batch["target_ids"][0].tolist())
            ts = time.time()
            cs = time.process_time()
            out = predictor.predict(batch)
            dt = time.time() - ts
            dcpu = time.process_time() - cs
            if bi < warmup_batches:
                continue
            bsz = batch["input_ids"].shape[0]
            t_meas += dt
            cpu_meas += dcpu
            n_done += bsz
            n_batches += 1
            per_batch.append(dt)
            # generated = final non-pad length - prompt non-pad length
            am = out.get("attention_mask")
            if am is not None:
                gen_tokens += int(am.sum().item() - batch["attention_mask"].sum().item())
            truth = batch.get("target_ids")
            if truth is not None and "text" in out:
                for txt, tids in zip(out["text"], truth):
                    t = tokenizer.decode([int(i) for i in tids if int(i) != tokenizer.pad_token_id],
                                         skip_special_tokens=True)
                    if " ".join(str(txt).split()[-len(t.split()):]) == t and len(t) > 0:
                        exact += 1
            if n_done >= num_examples:
                break
    eps = n_done / t_meas if t_meas > 0 else float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    bsz = int(cfg.per_device_batch_size)
    print(
        f"XLM_PRED_RESULT model={tag} predictor={type(predictor).__name__} batch={bsz} "
        f"examples={n_done} batches={n_batches} params={nparams} setup_s={setup_s:.2f} "
        f"examples_per_s={eps:.2f} cpu_s_per_example={cpu_meas / max(n_done, 1):.4f} s_per_batch={t_meas / max(n_batches, 1):.4f} "
        f"gen_tokens_per_s={gen_tokens / t_meas if t_meas > 0 else float('nan'):.1f} "
        f"mean_gen_tokens={gen_tokens / max(n_done, 1):.2f} "
        f"max_steps={getattr(predictor, 'max_steps', None)} max_length={getattr(predictor, 'max_length', None)} "
        f"exact_suffix_match={exact}/{n_done} "
        f"peak_rss_mb={rss:.0f} torch_threads={torch.get_num_threads()} "
        f"loadavg={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if "text" in out:
        print("SAMPLE_OUTPUT:", repr(out["text"][0])[:300])


if __name__ == "__main__":
    main()
