#!/bin/sh
# Policy front end next to postfwd1/postfwd2 in one interleaved run, with the shared harness
# (../shared/bench/policy: persistent connections, realistic ISP request stream, same answer checks).
#   bench/frontends/policy.sh [-c 1,8,32] [--duration 20] [--repeats 3]
# Environment: BENCH (harness directory, default ../shared/bench), ANCHORS (default postfwd1,postfwd2),
# BENCH_RESULTS (where results go; default bench/results).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
export BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
mkdir -p "$BENCH_RESULTS"
PY=${PYTHON:-$ROOT/.venv/bin/python}
RG="$PY -c 'from relayguard.app.cli import main; main()' serve"
# relayguard: the full decision path (containment, then the rate limit); relayguard-rate: the rule alone.
exec python3 "$BENCH/policy/policy_bench.py" --anchors "${ANCHORS:-postfwd1,postfwd2}" \
    --server "relayguard=$RG -c $HERE/policy.toml --policy 127.0.0.1:{port}" \
    --server "relayguard-rate=$RG -c $HERE/policy-rate-only.toml --policy 127.0.0.1:{port}" \
    "$@"
