#!/usr/bin/env bash
# All GPU checks and GPU benchmarks of issues 6 and 16 in one go (see scripts/gpu_check.py for the sections):
# bf16/fp16 autocast and dtype = "auto", the classify pipeline, and the streaming cycle end to end against
# the simulator on loopback (benchmarks/bench_cycle.py).
# Prints one JSON object on stdout (progress on stderr); also writes $OUT/gpu_check.json when OUT is set.
# Safe on a machine without CUDA: it prints {"cuda": false, ...} and exits 0.
#   GPU_CHECK_BUDGET_S=500   soft time budget (sections are skipped once it is spent)
#   GPU_CHECK_PHOTOS=4096    photos per pipeline run (128 rendered photos, cycled)
#   GPU_CHECK_COMPILE=0      skip the torch.compile section
#   GPU_CHECK_PHOTO_LATENCY=0.05  simulated seconds before each photo's first byte (stream section)
#   GPU_CHECK_SMOKE=1        tiny run on a CPU, to catch script bugs without a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then PY="$(command -v python3)"; fi
export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" scripts/gpu_check.py "$@"
