#!/usr/bin/env bash
# MMCR vs CLIP on the gemojione image-text pairs: 4 batch sizes x 3 seeds, table and plots into docs/.
# Installs what is missing (build packages and ruby-gemojione), builds, then runs the resumable grid.
# Extra arguments go to `mmcr multimodal compare` (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build data
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target mmcr >/dev/null
build/mmcr multimodal compare "$@"
