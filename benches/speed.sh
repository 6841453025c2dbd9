#!/usr/bin/env bash
# Classification speed, side by side with the scikit-learn peer in one run:
# criterion (`cargo bench --bench classify`) for frontdesk, then
# ../shared/data/peer_sklearn.py on the same BANKING77 train -> dev split.
#   bash benches/speed.sh               # needs `pip install scikit-learn`
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FRONTDESK_DATA:-../shared/data}
python3 -c 'import sklearn' 2>/dev/null || pip install --quiet scikit-learn
ours=$(cargo bench --bench classify 2>&1 | tee /dev/stderr | grep 'single-call latency')
peer=$(python3 "$DATA/peer_sklearn.py" "$DATA/banking77/train.csv" "$DATA/banking77/dev.csv")
echo
echo "$ours"
echo "peer (sklearn, banking77): $peer"
python3 - "$ours" "$peer" <<'PY'
import re, sys
ours, peer = sys.argv[1], sys.argv[2]
m = re.search(r"decide/banking77: .*p50 ([\d.]+) µs, p99 ([\d.]+) µs", ours)
p = re.search(r"predict_us p50 (\d+) p99 (\d+)", peer)
if m and p:
    o50, o99, s50, s99 = float(m[1]), float(m[2]), float(p[1]), float(p[2])
    print(f"banking77: frontdesk p50 {o50} µs vs peer {s50:.0f} µs -> {s50/o50:.0f}x faster; "
          f"p99 {o99} µs vs {s99:.0f} µs -> {s99/o99:.0f}x")
PY
