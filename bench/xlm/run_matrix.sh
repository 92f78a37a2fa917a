#!/usr/bin/env bash
# The measurement matrix recorded in RECIPE.md §7.  Appends to bench/.work/xlm_results.txt
# THREADS (default 1) -> OMP_NUM_THREADS = torch intra-op threads.  With 2 threads on a 2-core
# box that is also running other jobs, every op hits OpenMP barrier stalls (measured 3-20x slower).
H="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$H/../.work/xlm_results.txt"
export OMP_NUM_THREADS="${THREADS:-1}"
{
  echo "# $(date -u) $(nproc) cores OMP_NUM_THREADS=$OMP_NUM_THREADS loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  "$H/run_xlm_train.sh" -m ilm  -n 50 -d 128 -l 2 -H 2 -b 64
  "$H/run_xlm_train.sh" -m ilm  -n 50 -d 256 -l 4 -H 4 -b 64
  "$H/run_xlm_predict.sh" -m ilm -d 128 -l 2 -H 2 -b 64 -e 256
  "$H/run_xlm_predict.sh" -m ilm -d 128 -l 2 -H 2 -b 1 -e 32
  "$H/run_xlm_predict.sh" -m ilm -d 256 -l 4 -H 4 -b 64 -e 256
  "$H/run_xlm_predict.sh" -m ilm -d 256 -l 4 -H 4 -b 1 -e 16
  "$H/run_xlm_train.sh" -m arlm -n 50 -d 128 -l 2 -H 2 -b 64
  "$H/run_xlm_train.sh" -m mlm  -n 50 -d 128 -l 2 -H 2 -b 64
  "$H/run_xlm_train.sh" -m arlm -n 50 -d 256 -l 4 -H 4 -b 64
  "$H/run_xlm_train.sh" -m mlm  -n 50 -d 256 -l 4 -H 4 -b 64
} 2>&1 | tee -a "$OUT"
