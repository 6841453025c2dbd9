# Shared by the accuracy scripts: `check NAME VALUE OP BAR` records a pass or
# a failure; `json KEY` reads a key of the JSON on stdin.
fail=0 passed=0 failed=0
check() { # name value op bar
  if python3 -c "import sys; v,b=float('$2'),float('$4'); sys.exit(0 if ($3) else 1)" 2>/dev/null; then
    echo "  ok   $1 = $2 ($3, bar $4)"; passed=$((passed + 1))
  else
    echo "  FAIL $1 = $2 (want $3, bar $4)"; fail=1; failed=$((failed + 1))
  fi
}
json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
