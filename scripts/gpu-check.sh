#!/usr/bin/env bash
# The CUDA figures in one run, a few minutes on one GPU:
#
#   bash scripts/gpu-check.sh [--dry-run] [OUT]        (OUT defaults to ./gpu-check-out)
#
#   1. pytest -m cuda          the CUDA tests
#   2. doctor --device cuda    versions, the layers against nn.LSTM / the dense matrix, a timing
#   3. bench --device cuda     the sparse layers against dense ones at the paper's sizes
#   4. train-lm on PTB         200 batches each of awd-lstm and awd-sparse, fp32 and bf16: tokens/s
#   5. torchrun, one process   lm-tiny through NCCL
#
# Every step writes its output (.json or .txt) and its stderr (.log) under OUT and may fail
# without stopping the others; a summary table (step, ok/failed, key figure) ends the run
# and is kept in OUT/summary.txt. Send back OUT (or at least summary.txt and the .json files).
#
# Environment: PTB_DIR (default data/penn in this repository: `sparseseq getdata ptb`),
# PYTHON (default python), STEP_TIMEOUT (seconds per step, default 900).
# --dry-run prints the commands and runs nothing.
set -u

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
    dry_run=1
    shift
fi
case "${1:-}" in
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check.sh: unknown option $1 (usage: gpu-check.sh [--dry-run] [OUT])" >&2; exit 2 ;;
esac

# paths given relative to where the script was started, before moving to the repository
absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
OUT=$(absolute "${1:-gpu-check-out}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PTB_DIR:-}" ]; then PTB=$(absolute "$PTB_DIR"); else PTB="$ROOT/data/penn"; fi
PY=${PYTHON:-python}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
cd "$ROOT" || exit 2

TIMEOUT=()
if command -v timeout >/dev/null 2>&1; then TIMEOUT=(timeout "$STEP_TIMEOUT"); fi
if [ "$dry_run" = 0 ]; then
    mkdir -p "$OUT" || exit 2
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
fi

names=() statuses=() figures=() seconds=()

# The key figure of a step from its output file: a line of text, or "-".
figure() {
    "$PY" - "$1" "$2" <<'EOF' 2>/dev/null || echo "-"
import json, sys
kind, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8", errors="replace").read()
if kind in ("pytest", "error"):  # the last line of text; for an error, the message in a box
    lines = [l.strip("=│╭╰╮╯─ ") for l in text.splitlines()]
    lines = [l for l in lines if l and not l.startswith("Try '")]
    errors = [l for l in lines if l.startswith("error: ")]
    print((errors or lines or ["-"])[-1][:160])
    sys.exit()
r = json.loads(text)
if kind == "doctor":
    checks = r["checks"]
    failed = [c["name"] for c in checks if not c["ok"]]
    t = next(c for c in checks if c["name"] == "timing")
    ms = t.get("ms", {})
    print(f"{len(checks) - len(failed)}/{len(checks)} ok" + (f" (failed: {', '.join(failed)})" if failed else "")
          + (f"; {r['env']['gpu'] or r['env']['device']}: sequential {ms['sequential']:.1f} ms,"
             f" dense {ms['dense']:.1f} ms, auto={t['auto']}" if ms else ""))
elif kind == "bench":
    row = lambda key, start: next(x for x in r[key] if x["name"].startswith(start))
    print(f"SparseLSTM auto/equal-params {row('lstm', 'SparseLSTM impl=auto')['ratio']:.2f}, "
          f"dense/equal-params {row('lstm', 'SparseLSTM impl=dense')['ratio']:.2f}; "
          f"SparseEmbedding/dense {row('embedding', 'SparseEmbedding')['ratio']:.2f}")
else:  # a training record
    m = r.get("metrics", {})
    ppl = f", valid ppl {m['valid_ppl']:.1f}" if isinstance(m.get("valid_ppl"), float) else ""
    print(f"{r['tokens_per_s']:,.0f} tokens/s{ppl}")
EOF
}

# step NAME KIND OUTFILE COMMAND...: run COMMAND, stdout to OUT/OUTFILE, stderr to OUT/NAME.log
step() {
    local name=$1 kind=$2 out=$3
    shift 3
    echo "[$name] $*"
    [ "$dry_run" = 1 ] && return 0
    local rc=0 start=$SECONDS
    ${TIMEOUT[@]+"${TIMEOUT[@]}"} "$@" >"$OUT/$out" 2>"$OUT/$name.log" || rc=$?
    names+=("$name")
    seconds+=("$((SECONDS - start))")
    case $rc in
        0) statuses+=("ok") ;;
        124) statuses+=("failed (timeout)") ;;
        *) statuses+=("failed (exit $rc)") ;;
    esac
    local fig
    fig=$(figure "$kind" "$OUT/$out")
    if [ "$rc" != 0 ] && [ "$fig" = "-" ]; then   # no figure: the error message says why
        fig=$(figure error "$OUT/$name.log")
    fi
    figures+=("${fig:--}")
}

step pytest-cuda pytest pytest-cuda.txt "$PY" -m pytest -q -m cuda
step doctor doctor doctor.json "$PY" -m sparseseq_cli doctor --device cuda --json
step bench bench bench.json "$PY" -m sparseseq_cli bench --device cuda --json
for preset in awd-lstm awd-sparse; do
    for precision in fp32 bf16; do
        name=$preset$([ "$precision" = bf16 ] && echo -bf16)
        flag=()
        [ "$precision" = bf16 ] && flag=(--precision bf16)
        step "$name" train "$name.json" "$PY" -m sparseseq_cli train-lm --preset "$preset" \
            --data "$PTB" --epochs 1 --set max_batches=200 ${flag[@]+"${flag[@]}"} \
            --save "$OUT/$name" --force --device cuda --json
    done
done
# torchrun, as the module of this python (a torchrun on the PATH may belong to another one)
step torchrun train torchrun.json "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 \
    -m sparseseq_cli train-lm --preset lm-tiny --epochs 1 --save "$OUT/torchrun" --force \
    --device cuda --json

[ "$dry_run" = 1 ] && exit 0
{
    printf '%-16s %-17s %6s  %s\n' step result seconds "key figure"
    for i in "${!names[@]}"; do
        printf '%-16s %-17s %6s  %s\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}" "${figures[$i]}"
    done
    echo
    echo "outputs in $OUT"
} | tee "$OUT/summary.txt"
for status in "${statuses[@]}"; do
    [ "$status" = ok ] || exit 1
done
exit 0
