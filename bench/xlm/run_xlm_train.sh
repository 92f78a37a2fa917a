#!/usr/bin/env bash
# Run the peer package XLM (xlm-core/xlm-models 0.3.1) training on a star task on CPU
# for N steps and print one parsable line:
#   XLM_RESULT model=... steps=... startup_s=... steps_per_s=... tokens_per_s=... (+ extras)
#
# Usage:
#   bench/xlm/run_xlm_train.sh [-m ilm|arlm|mlm] [-t easy|medium|hard] [-n STEPS] [-d D_MODEL]
#                              [-l LAYERS] [-H HEADS] [-b BATCH] [-w WARMUP] [-- extra hydra overrides]
# Defaults: -m ilm -t easy -n 50 -d 128 -l 2 -H 2 -b 64 -w 5
#
# Needs the venv bench/.xlm-venv (see RECIPE.md).  Generates the star data
# locally on first use under bench/.work/xlm_run (the HF hub is unreachable).
# tokens_per_s = real (non-pad) tokens per second = sum(batch["attention_mask"]) over the
# measured steps / their wall time (prompt + [CLS]/[BOS] + target tokens; for ILM the target is the
# partially-deleted target, i.e. what the model actually sees).  padded_tokens_per_s counts B*L.
# Steady state excludes the first WARMUP steps.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(cd "$HERE/.." && pwd)"
VENV="$BENCH/.xlm-venv"
WORK="$BENCH/.work/xlm_run"

MODEL=ilm; TASK=easy; STEPS=50; D=128; L=2; H=2; B=64; WARM=5
while getopts "m:t:n:d:l:H:b:w:" opt; do
  case $opt in
    m) MODEL=$OPTARG;; t) TASK=$OPTARG;; n) STEPS=$OPTARG;; d) D=$OPTARG;;
    l) L=$OPTARG;; H) H=$OPTARG;; b) B=$OPTARG;; w) WARM=$OPTARG;;
    *) echo "bad option" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

[ -x "$VENV/bin/xlm" ] || { echo "missing $VENV (see bench/xlm/RECIPE.md)" >&2; exit 2; }
case $TASK in easy) DSNAME=star-small;; medium) DSNAME=star-medium;; hard) DSNAME=star-hard;; *) exit 2;; esac

mkdir -p "$WORK"
cd "$WORK"   # datasets.load_dataset("dhruveshpatel/<name>") resolves to ./dhruveshpatel/<name>
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HOME="$BENCH/.work/hf_home"
export DATA_DIR="$WORK/data"
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
export TQDM_DISABLE=1
EXP="star_${TASK}_${MODEL}"

if [ ! -f "dhruveshpatel/$DSNAME/train.parquet" ]; then
  echo "[run_xlm_train] generating $DSNAME locally" >&2
  python "$HERE/make_star_data.py" --root "$WORK" --which "$TASK" >"$WORK/gen_$TASK.log" 2>&1
fi
if [ ! -d "data/dhruveshpatel/$DSNAME/train" ]; then
  echo "[run_xlm_train] xlm job_type=prepare_data experiment=$EXP" >&2
  xlm job_type=prepare_data experiment="$EXP" >"$WORK/prepare_$EXP.log" 2>&1
fi

RUN_ID="${EXP}_d${D}l${L}h${H}_b${B}_n${STEPS}_$(date +%s%N)"
export LOG_DIR="$WORK/logs/$RUN_ID"
LOG="$WORK/$RUN_ID.log"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
export XLM_BENCH_T0=$(date +%s.%N)
set +e
xlm job_type=train experiment="$EXP" trainer_strategy=cpu \
  model.d_model="$D" model.num_layers="$L" model.nhead="$H" \
  per_device_batch_size="$B" global_batch_size="$B" \
  trainer.max_steps="$STEPS" trainer.num_sanity_val_steps=0 trainer.log_every_n_steps=50 \
  num_dataloader_workers=0 dataloader_prefetch_factor=null dataloader_pin_memory=false \
  resume_from_checkpoint=false \
  +callbacks.xlm_bench._target_=xlm_bench_callback.BenchCallback \
  +callbacks.xlm_bench.model_tag="$MODEL" +callbacks.xlm_bench.warmup_steps="$WARM" \
  "$@" >"$LOG" 2>&1
RC=$?
set -e
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
LINE=$(grep -m1 '^XLM_RESULT' "$LOG" || true)
if [ -z "$LINE" ]; then
  echo "XLM_RESULT model=$MODEL status=failed rc=$RC log=$LOG" ; tail -20 "$LOG" >&2; exit 1
fi
echo "$LINE task=$TASK d_model=$D layers=$L heads=$H loadavg_before=${LOAD0// /,} loadavg_after=${LOAD1// /,} log=$LOG"
