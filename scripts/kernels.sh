#!/usr/bin/env bash
# Runs a command with the float kernels another x86-64 machine would use, for every part of
# libtorch that picks its own by CPU: ATen's vectorised operators (ATEN_CPU_CAPABILITY), MKL's
# matrix products (MKL_ENABLE_INSTRUCTIONS) and oneDNN's convolutions (ONEDNN_MAX_CPU_ISA).
# ATen's switch alone leaves the matrix products on this CPU's best MKL path: a mixture that no
# machine runs (on an AVX-512 machine, `ATEN_CPU_CAPABILITY=avx2` alone gives other numbers than
# an AVX2 machine; with all three capped it gives the AVX2 machine's, to the last digit on one
# grid and within 0.05 points on another, perhaps as MKL also picks code by CPU vendor).
#   scripts/kernels.sh avx2|avx512|default COMMAND [ARGS...]
# avx512 needs a CPU with AVX-512 and leaves MKL and oneDNN on their best path for it; avx2
# caps all three at AVX2; default is ATen's scalar code, MKL at SSE4.2 and oneDNN at SSE4.1 (the
# oldest x86-64 path each keeps). Every process the command starts inherits the setting,
# mpirun's ranks and the Python peers included.
set -euo pipefail
usage="usage: scripts/kernels.sh avx2|avx512|default COMMAND [ARGS...]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
set_name=$1
shift
has() { grep -qw "$1" /proc/cpuinfo; }
case "$set_name" in
  avx512)
    has avx512f || { echo "error: kernels.sh avx512: this CPU has no AVX-512 (avx512f)" >&2; exit 2; }
    export ATEN_CPU_CAPABILITY=avx512
    unset MKL_ENABLE_INSTRUCTIONS ONEDNN_MAX_CPU_ISA
    ;;
  avx2)
    has avx2 || { echo "error: kernels.sh avx2: this CPU has no AVX2" >&2; exit 2; }
    export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
    ;;
  default)
    export ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41
    ;;
  *)
    echo "error: kernels.sh: unknown kernel set \`$set_name\` ($usage)" >&2
    exit 2
    ;;
esac
exec "$@"
