#!/usr/bin/env bash
# Time XLM's own sampler (harness.predictor.predict) on star test prompts on CPU.
# Usage: bench/xlm/run_xlm_predict.sh [-m ilm|arlm|mlm] [-t easy] [-d 128] [-l 2] [-H 2] [-b 64]
#                                     [-e NUM_EXAMPLES] [-s STATE_DICT.pt] [-- extra hydra overrides]
# Prints: XLM_PRED_RESULT model=... batch=... examples_per_s=... (see xlm_predict_bench.py)
# Requires the data prepared by run_xlm_train.sh (or RECIPE.md step 2).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(cd "$HERE/.." && pwd)"
VENV="$BENCH/.xlm-venv"; WORK="$BENCH/.work/xlm_run"
MODEL=ilm; TASK=easy; D=128; L=2; H=2; B=64; NEX=256; SD=""
while getopts "m:t:d:l:H:b:e:s:" opt; do
  case $opt in
    m) MODEL=$OPTARG;; t) TASK=$OPTARG;; d) D=$OPTARG;; l) L=$OPTARG;; H) H=$OPTARG;;
    b) B=$OPTARG;; e) NEX=$OPTARG;; s) SD=$OPTARG;; *) exit 2;;
  esac
done
shift $((OPTIND - 1)); [ "${1:-}" = "--" ] && shift
cd "$WORK"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$BENCH/.work/hf_home"
export DATA_DIR="$WORK/data" PATH="$VENV/bin:$PATH" PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
RUN_ID="pred_star_${TASK}_${MODEL}_d${D}l${L}h${H}_b${B}_$(date +%s%N)"
export LOG_DIR="$WORK/logs/$RUN_ID"
EXTRA=()
[ -n "$SD" ] && EXTRA+=("+bench.state_dict=$SD")
set +e
python "$HERE/xlm_predict_bench.py" experiment="star_${TASK}_${MODEL}" trainer_strategy=cpu \
  model.d_model="$D" model.num_layers="$L" model.nhead="$H" per_device_batch_size="$B" \
  num_dataloader_workers=0 dataloader_prefetch_factor=null dataloader_pin_memory=false \
  +bench.num_examples="$NEX" +bench.tag="$MODEL" "${EXTRA[@]}" "$@" >"$WORK/$RUN_ID.log" 2>&1
RC=$?
set -e
LINE=$(grep -m1 '^XLM_PRED_RESULT' "$WORK/$RUN_ID.log" || true)
[ -z "$LINE" ] && { echo "XLM_PRED_RESULT model=$MODEL status=failed rc=$RC log=$WORK/$RUN_ID.log"; tail -20 "$WORK/$RUN_ID.log" >&2; exit 1; }
echo "$LINE d_model=$D layers=$L heads=$H log=$WORK/$RUN_ID.log"
