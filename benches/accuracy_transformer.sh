#!/usr/bin/env bash
# Accuracy with the semantic layer (feature `semantic`, int8) against the
# embedding peer (the same MiniLM embeddings + scikit-learn logistic
# regression, ../shared/data/peer_minilm.py, numbers in
# ../shared/data/README.md), on the exact commands a user runs. Fails (exit 1)
# below the bars of the transformer issue. Needs models/fetch.sh first.
#   bash benches/accuracy_transformer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FRONTDESK_DATA:-../shared/data}
MODEL=${FRONTDESK_MODEL:-models/all-MiniLM-L6-v2}
[ -d "$DATA/banking77" ] || { echo "accuracy_transformer.sh: $DATA not found" >&2; exit 1; }
[ -f "$MODEL/model.safetensors" ] || { echo "no model in $MODEL: run models/fetch.sh" >&2; exit 1; }
# The product's semantic build: int8 in pure Rust (no libtorch), the same
# integers on every CPU whatever kernel it picks (VNNI, AVX2, portable).
env -u LIBTORCH cargo build --release --quiet --features semantic
FD=./target/release/frontdesk
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. benches/common.sh

echo "== BANKING77 train -> dev with the model (embedding peer 0.9382)"
$FD import "$DATA/banking77/train.csv" --out "$W/b77" >/dev/null
r=$($FD eval "$DATA/banking77/dev.csv" --intents "$W/b77" --model "$MODEL" --json)
# 0.9432 in int8, the only precision of the `semantic` build (BENCHMARKS.md
# has f32 and bf16, which need `transformer`). The margin over the bar is 3 messages of 1,003.
check "banking77 accuracy" "$(echo "$r" | json accuracy)" "v>=b" 0.94
# A second start finds every example embedding in the cache.
r=$($FD eval "$DATA/banking77/dev.csv" --intents "$W/b77" --model "$MODEL" --json)
echo "  load with 9,000 cached example embeddings: $(echo "$r" | json load_ms) ms (lexical training included)"

echo "== BANKING77 10-shot -> dev with the model (embedding peer 0.8425)"
$FD import "$DATA/banking77/train_10shot.csv" --out "$W/b10" >/dev/null
r=$($FD eval "$DATA/banking77/dev.csv" --intents "$W/b10" --model "$MODEL" --json)
check "banking77 10-shot accuracy" "$(echo "$r" | json accuracy)" "v>=b" 0.85

echo "== CLINC150 train -> calibrate -> val with the model (peer 0.9383 in-scope at 0.81 OOS recall)"
$FD import "$DATA/clinc150/train.csv" --out "$W/c150" >/dev/null
# The recall asked of calibrate is the user's choice; the folds estimate
# val's recall closely with the model (0.80 asked -> 0.80 on val), so the
# issue's 0.82 is asked for with a margin.
$FD calibrate "$DATA/clinc150/train.csv" --intents "$W/c150" --model "$MODEL" --target-oos-recall 0.85
r=$($FD eval "$DATA/clinc150/val.csv" --intents "$W/c150" --model "$MODEL" --json)
check "clinc150 in-scope accuracy" "$(echo "$r" | json inscope_accuracy)" "v>=b" 0.94
check "clinc150 oos recall" "$(echo "$r" | json oos_recall)" "v>=b" 0.82

echo "accuracy (transformer): $passed passed, $failed failed"
exit $fail
