#!/usr/bin/env bash
# Out-of-scope recall on topics calibrate never saw (issue 19, item 3). val's
# 100 `oos` rows are too few to tell a calibration that holds from one that
# overstates, so this makes unseen topics out of CLINC150's own intents:
# for each seed, HOLD of the 150 intents (drawn with Python's
# random.Random(seed)) are taken out of train.csv; the rest is imported and
# calibrated at each target; then the held-out intents' rows (their train
# and val rows, relabelled `oos`) are evaluated: the share declined is the
# recall delivered on off-topic messages of new topics. val's real `oos`
# rows and its in-scope rows of the kept intents are evaluated beside them.
#   bash benches/calibration_unseen.sh                        # without the model
#   SEEDS=1 bash benches/calibration_unseen.sh --model models/all-MiniLM-L6-v2
#   FRONTDESK_BIN=target/release/frontdesk bash benches/calibration_unseen.sh  # no build
# SEEDS (default "1 2 3"), TARGETS (default "0.80 0.85 0.90"), HOLD (default
# 15). Prints one line per seed and target, then the mean over seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FRONTDESK_DATA:-../shared/data}/clinc150
SEEDS=${SEEDS:-1 2 3}
TARGETS=${TARGETS:-0.80 0.85 0.90}
HOLD=${HOLD:-15}
MODEL=()
if [ "${1:-}" = --model ]; then
  [ -f "${2:-}/model.safetensors" ] || { echo "no model in ${2:-}: run models/fetch.sh" >&2; exit 1; }
  MODEL=(--model "$2")
fi
[ -f "$DATA/train.csv" ] || { echo "calibration_unseen.sh: $DATA not found" >&2; exit 1; }
# One binary for both: without --model the semantic build runs the default
# build's code path. FRONTDESK_BIN names a binary built already.
FD=${FRONTDESK_BIN:-}
if [ -z "$FD" ]; then
  env -u LIBTORCH cargo build --release --quiet --features semantic
  FD=./target/release/frontdesk
fi
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

printf 'seed\ttarget\tclarify\tfolds_oos_recall\tunseen_declined (per-intent min-max)\tval_oos_recall\tval_inscope\tcalibrate_s\n'
for seed in $SEEDS; do
  S="$W/s$seed"; mkdir -p "$S"
  # The split: train without the held intents; their rows, relabelled oos,
  # as unseen topics (with each row's intent beside, in the same order);
  # val without them.
  python3 - "$DATA" "$seed" "$HOLD" "$S" <<'PY'
import csv, random, sys
data, seed, hold, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def read(name): return list(csv.DictReader(open(f"{data}/{name}", newline="")))
train, val = read("train.csv"), read("val.csv")
intents = sorted({r["intent"] for r in train} - {"oos"})
held = set(random.Random(seed).sample(intents, hold))
def write(name, rows, cols=("text", "intent")):
    with open(f"{out}/{name}", "w", newline="") as f:
        w = csv.writer(f); w.writerow(cols); w.writerows(rows)
write("train.csv", [(r["text"], r["intent"]) for r in train if r["intent"] not in held])
write("val_kept.csv", [(r["text"], r["intent"]) for r in val if r["intent"] not in held])
unseen = [r for r in train + val if r["intent"] in held]
write("unseen.csv", [(r["text"], "oos") for r in unseen])
write("unseen_intents.csv", [(r["intent"],) for r in unseen], ("intent",))
print(f"seed {seed}: held out {', '.join(sorted(held))} ({len(unseen)} rows)", file=sys.stderr)
PY
  $FD import "$S/train.csv" --out "$S/intents" >/dev/null
  for target in $TARGETS; do
    start=$(date +%s.%N)
    cal=$($FD calibrate "$S/train.csv" --intents "$S/intents" --target-oos-recall "$target" "${MODEL[@]}" 2>/dev/null)
    end=$(date +%s.%N)
    $FD eval "$S/unseen.csv" --intents "$S/intents" "${MODEL[@]}" --predictions "$S/unseen_pred.csv" >/dev/null
    kept=$($FD eval "$S/val_kept.csv" --intents "$S/intents" "${MODEL[@]}" --json)
    python3 - "$seed" "$target" "$cal" "$kept" "$S" "$start" "$end" <<'PY' | tee -a "$W/table"
import csv, json, re, sys
seed, target, cal, kept, s, start, end = sys.argv[1:]
clarify = re.search(r"clarify ≥ ([0-9.]+)", cal).group(1)
folds = re.search(r"oos recall ([0-9.]+)", cal).group(1)
preds = list(csv.DictReader(open(f"{s}/unseen_pred.csv", newline="")))
intents = [r["intent"] for r in csv.DictReader(open(f"{s}/unseen_intents.csv", newline=""))]
assert len(preds) == len(intents)
per = {}
for p, i in zip(preds, intents):
    per.setdefault(i, []).append(p["decision"] == "fallback")
declined = sum(sum(v) for v in per.values()) / len(preds)
shares = [sum(v) / len(v) for v in per.values()]
k = json.loads(kept)
print(f"{seed}\t{target}\t{clarify}\t{float(folds):.3f}\t{declined:.3f} ({min(shares):.2f}-{max(shares):.2f})"
      f"\t{k['oos_recall']:.2f}\t{k['inscope_accuracy']:.4f}\t{float(end) - float(start):.0f}")
PY
  done
done
echo "mean over seeds: target, unseen declined, val oos recall"
python3 - "$W/table" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
for t in sorted({r[1] for r in rows}):
    mine = [r for r in rows if r[1] == t]
    u = sum(float(r[4].split()[0]) for r in mine) / len(mine)
    v = sum(float(r[5]) for r in mine) / len(mine)
    print(f"{t}\t{u:.3f}\t{v:.3f}\t({len(mine)} seeds)")
PY
