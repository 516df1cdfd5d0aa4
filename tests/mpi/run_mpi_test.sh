#!/usr/bin/env bash
# Drives `tapegrad train` under mpirun for CTest (tests/mpi/CMakeLists.txt). Prints "mpi SCENARIO: ok" on success.
#   run_mpi_test.sh checkpoint WORK TAPEGRAD DATA      rank 0 writes a checkpoint a single process loads;
#                                                        rank 1 writes nothing and prints nothing
#   run_mpi_test.sh error      WORK TAPEGRAD DATA        a bad --data on rank 1 alone stops both ranks, with the
#                                                        message and rank 1 named, exit non-zero
#   run_mpi_test.sh kill       WORK TAPEGRAD DATA        kill -9 of rank 1 while training: mpirun exits non-zero
#                                                        with a message, and does not hang
#   run_mpi_test.sh residual   WORK TAPEGRAD DATA MODEL  `mpirun -np 2 tapegrad train --model MODEL` (a file with
#                                                        residual blocks and batch norm) trains 2 epochs, and its
#                                                        checkpoint loads in one process (eval, --resume)
# Environment: TG_MPIEXEC (mpiexec and its flags, e.g. "/usr/bin/mpiexec --oversubscribe"), TG_NP_FLAG (-n).
set -u
scenario=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
log=$work/log
fail() { echo "mpi $scenario: FAILED: $*"; echo "---- output ----"; cat "$log"; exit 1; }
common=(--limit 512 --epochs 1 --batch-size 32 --threads 1)

case "$scenario" in
checkpoint)
  tg=$3 data=$4
  # Two app contexts (MPMD), so that rank 1 has a --out of its own, which must never be created.
  $TG_MPIEXEC --tag-output $TG_NP_FLAG 1 "$tg" train --data "$data" "${common[@]}" --out "$work/rank0" : \
    $TG_NP_FLAG 1 "$tg" train --data "$data" "${common[@]}" --out "$work/rank1" >"$log" 2>&1 || fail "mpirun exited $?"
  grep -q 'batch 32 per rank x 2 ranks (MPI) = 64 per step' "$log" || fail "no header line naming the ranks"
  grep -q 'test accuracy' "$log" || fail "rank 0 did not finish"
  grep -q ',1\]<std' "$log" && fail "rank 1 printed something"
  [ -e "$work/rank1" ] && fail "rank 1 wrote $work/rank1"
  for f in model.safetensors metrics.csv filters.png mistakes.png; do
    [ -s "$work/rank0/$f" ] || fail "rank 0 did not write $f"
  done
  # One process loads it: predict, and tapegrad train --resume (weights and optimizer state).
  "$tg" predict "$work/rank0/model.safetensors" "$work/rank0/filters.png" >>"$log" 2>&1 || fail "predict could not use it"
  "$tg" train --data "$data" --limit 512 --epochs 2 --batch-size 32 --threads 1 --resume "$work/rank0/model.safetensors" \
    --out "$work/single" >>"$log" 2>&1 || fail "a single process could not resume from it"
  grep -q 'resuming .* after epoch 1 of 2' "$log" || fail "no resume line"
  ;;
error)
  tg=$3 data=$4
  $TG_MPIEXEC $TG_NP_FLAG 1 "$tg" train --data "$data" "${common[@]}" --out "$work/rank0" : \
    $TG_NP_FLAG 1 "$tg" train --data "$work/no-such-folder" "${common[@]}" --out "$work/rank1" >"$log" 2>&1 &&
    fail "mpirun exited 0"
  grep -q 'tapegrad train: error on rank 1 of 2: .*no-such-folder' "$log" || fail "no message naming rank 1 and the path"
  grep -q 'test accuracy' "$log" && fail "rank 0 went on training"
  ;;
kill)
  tg=$3 data=$4
  $TG_MPIEXEC $TG_NP_FLAG 2 "$tg" train --data "$data" --epochs 1000 --batch-size 16 --threads 1 --out "$work/out" \
    >"$log" 2>&1 &
  launcher=$!
  stop_job() { kill -TERM "$launcher" 2>/dev/null; sleep 2; kill -9 "$launcher" 2>/dev/null; }  # mpirun ends its ranks
  for _ in $(seq 300); do grep -q 'epoch 1/1000 \[' "$log" && break; sleep 0.2; done
  grep -q 'epoch 1/1000 \[' "$log" || { stop_job; fail "training did not start within 60 s"; }
  # Rank 1: the process of this job whose environment says so (Open MPI's launcher is its parent or grandparent).
  victim=
  for p in $(pgrep -f -- "$work/out"); do
    [ "$p" = "$launcher" ] && continue
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
  done
  [ -n "$victim" ] || { stop_job; fail "did not find rank 1's process"; }
  echo "killing rank 1 (pid $victim)" >>"$log"
  kill -9 "$victim"
  for _ in $(seq 600); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$launcher" 2>/dev/null; then
    stop_job
    fail "the job still ran 60 s after rank 1 was killed"
  fi
  wait "$launcher"
  code=$?
  [ "$code" -ne 0 ] || fail "mpirun exited 0"
  grep -qiE 'signal 9|killed' "$log" || fail "no message about the killed rank"
  echo "exit code $code after killing rank 1; the launcher said:"
  grep -iE 'signal 9|killed' "$log" | head -3
  ;;
residual)
  tg=$3 data=$4 model=$5
  $TG_MPIEXEC $TG_NP_FLAG 2 "$tg" train --model "$model" --data "$data" --limit 512 --epochs 2 --batch-size 32 \
    --threads 1 --out "$work/out" >"$log" 2>&1 || fail "mpirun exited $?"
  grep -q 'Residual(body .* shortcut' "$log" || fail "the model's summary shows no residual block with a shortcut"
  grep -q 'batch 32 per rank x 2 ranks (MPI) = 64 per step' "$log" || fail "no header line naming the ranks"
  grep -q 'epoch 2/2: train loss' "$log" || fail "rank 0 did not train 2 epochs"
  grep -q 'test accuracy' "$log" || fail "rank 0 did not finish"
  [ -s "$work/out/model.safetensors" ] || fail "no checkpoint"
  # One process loads the nested keys (I.body.J..., I.shortcut.J...) strictly: eval, then one more epoch.
  "$tg" eval "$work/out/model.safetensors" --data "$data" --out "$work/eval" >>"$log" 2>&1 || fail "eval could not use it"
  "$tg" train --data "$data" --limit 512 --epochs 3 --batch-size 32 --threads 1 --resume "$work/out/model.safetensors" \
    --out "$work/single" >>"$log" 2>&1 || fail "a single process could not resume from it"
  grep -q 'resuming .* after epoch 2 of 3' "$log" || fail "no resume line"
  ;;
*) echo "run_mpi_test.sh: unknown scenario '$scenario'"; exit 2 ;;
esac
echo "mpi $scenario: ok"
