#!/usr/bin/env bash
# matbrain's main job, end to end on the bundled JARVIS-DFT subset:
#   set up -> build graphs (cached) -> train a multi-task e3nn model on all nine properties
#   -> print the test MAE table -> predict the nine properties of examples/cifs into a CSV.
# DEMO_LEVEL / DEMO_EPOCHS change the training budget (default: level std, 40 epochs, ~8 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${MATBRAIN_VENV:-.venv}"
export OPENBLAS_NUM_THREADS=1
MB="$VENV/bin/matbrain"
LEVEL="${DEMO_LEVEL:-std}"
EPOCHS="${DEMO_EPOCHS:-40}"

echo "== 1/3 graphs of the bundled JARVIS subset (neighbours, edge vectors, bond angles; cached)"
"$MB" data process

echo "== 2/3 multi-task e3nn, level $LEVEL, $EPOCHS epochs, all nine properties"
"$MB" train --algorithm e3nn --level "$LEVEL" --epochs "$EPOCHS" --all-properties --output-root models
RUN="$(ls -td models/multitask_"$LEVEL"_e3nn/run_* | head -n 1)"

echo "== 3/3 predictions for examples/cifs"
mkdir -p demo_output
"$MB" predict --model "$RUN" --dir examples/cifs --output demo_output/predictions.csv
echo
cat demo_output/predictions.csv
echo
echo "run folder with metrics, parity plots and learning curves: $RUN"
