#!/usr/bin/env bash
# A grid's makespan as an array job against one mpirun allocation: N shard processes started
# together on one output directory (what `subpt-bench slurm` submits, simulated with SLURM's
# environment) and `mpirun -n N`, for each N, each from a fresh output directory and cache.
#   benchmarks/shards_makespan.sh BIN GRID OUT [N...]        (default N: 1 2 4)
# Extra arguments for every run (paths in place of the grid's) go in $GRID_ARGS.
set -euo pipefail
bin=$(realpath "$1")
grid=$(realpath "$2")
out=$3
shift 3
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 2 4); fi
mkdir -p "$out"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
read -r -a extra <<<"${GRID_ARGS:-}"
run() { "$@" --grid "$grid" --device cpu --threads 1 --progress plain "${extra[@]}"; }
printf '| N | %s shards (s) | mpirun -n N (s) |\n|---|---|---|\n' "array"
for n in "${counts[@]}"; do
  d=$out/shards$n
  rm -rf "$d"
  start=$(date +%s%N)
  for ((i = 0; i < n; i++)); do
    SLURM_ARRAY_JOB_ID=1 SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$n \
      run "$bin" --out "$d/runs" --cache "$d/cache" >"$d.task$i.log" 2>&1 &
  done
  wait
  shards=$(( ($(date +%s%N) - start) / 1000000 ))
  d=$out/mpi$n
  rm -rf "$d"
  start=$(date +%s%N)
  run mpirun -n "$n" --oversubscribe "$bin" --out "$d/runs" --cache "$d/cache" >"$d.log" 2>&1
  mpi=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '| %s | %d.%01d | %d.%01d |\n' "$n" $((shards / 1000)) $((shards % 1000 / 100)) \
    $((mpi / 1000)) $((mpi % 1000 / 100))
done
