#!/usr/bin/env bash
# nptrack eval as a user meets it: help with an example, exit status 2 for usage mistakes, 1
# with one line naming the file (and line) for unreadable or malformed input, and the JSON and
# table outputs.
#   usage: eval_errors.sh NPTRACK_BIN SOURCE_DIR SCRATCH_DIR
set -uo pipefail
bin=$1 src=$2 tmp=$3
. "$(dirname "$0")/lib/expect.bash"

gt=$tmp/gt.txt pred=$tmp/pred.txt
printf '1,1,10,10,20,20,1,1,1\n1,2,50,10,20,20,1,2,1\n2,1,11,10,20,20,1,1,1\n2,2,51,10,20,20,1,1,1\n' >"$gt"
printf '# tracker output, 7 columns\n1,8,10,10,20,20,0.9\n1,9,50,10,20,20,0.8\n\n2,8,11,10,20,20,0.9\n2,9,51,10,20,20,0.7\n' >"$pred"
printf 'frame,type,parents,children\n2,merge,1 2,3\n' >"$tmp/ev.csv"

# Help: options and an example.
expect 0 "" "$bin" eval --help
for want in "Usage: nptrack eval" "--gt FILE" "--pred FILE" "--events-gt" "--events-pred" "--json" \
            "Example" "nptrack eval --gt"; do
  grep -qF -- "$want" "$tmp/out" || fail "eval --help lacks '$want'"
done
grep -q "lsa-selftest" "$tmp/out" && fail "eval --help shows the hidden --lsa-selftest"

# Usage errors: exit 2, one line.
expect 2 "missing --gt" "$bin" eval --pred "$pred"
expect 2 "missing --pred" "$bin" eval --gt "$gt"
expect 2 "unknown option '--bogus'" "$bin" eval --gt "$gt" --pred "$pred" --bogus
expect 2 "unknown option '-x'" "$bin" eval -x --gt "$gt" --pred "$pred"
expect 2 "option '--gt' needs a value" "$bin" eval --pred "$pred" --gt
expect 2 "unexpected argument 'extra'" "$bin" eval --gt "$gt" --pred "$pred" extra
expect 2 "--events-gt and --events-pred go together" "$bin" eval --gt "$gt" --pred "$pred" \
  --events-gt "$tmp/ev.csv"

# Input errors: exit 1, one line naming the file (and line).
expect 1 "nptrack eval: error: $tmp/missing.txt: cannot open" "$bin" eval --gt "$tmp/missing.txt" --pred "$pred"
expect 1 "$tmp/nope.txt: cannot open" "$bin" eval --gt "$gt" --pred "$tmp/nope.txt"
printf '1,1,10,10,20,20\n\n1,2,10,10,20\n' >"$tmp/short.txt"
expect 1 "$tmp/short.txt:3: expected 6 to 10 comma-separated fields" "$bin" eval --gt "$gt" --pred "$tmp/short.txt"
printf '1,1,10,ten,20,20\n' >"$tmp/nan.txt"
expect 1 "$tmp/nan.txt:1: field 4 \(y\): 'ten' is not a finite number" "$bin" eval --gt "$tmp/nan.txt" --pred "$pred"
printf '1,1,10,10,20,20\n1,1,30,10,20,20\n' >"$tmp/dup.txt"
expect 1 "$tmp/dup.txt:2: id 1 appears twice in frame 1" "$bin" eval --gt "$gt" --pred "$tmp/dup.txt"
expect 1 "$tmp/noev.csv: cannot open" "$bin" eval --gt "$gt" --pred "$pred" --events-gt "$tmp/ev.csv" \
  --events-pred "$tmp/noev.csv"
printf 'frame,type,parents,children\n2,merge,1 2,3\n5,fuse,1,2\n' >"$tmp/badev.csv"
expect 1 "$tmp/badev.csv:3: type: 'fuse' is neither 'merge' nor 'split'" "$bin" eval --gt "$gt" \
  --pred "$pred" --events-gt "$tmp/ev.csv" --events-pred "$tmp/badev.csv"

# Success: perfect tracking; JSON has every key; class accuracy counts the class-2 box.
expect 0 "" "$bin" eval --gt "$gt" --pred "$pred" --json
for key in HOTA DetA AssA LocA DetRe DetPr AssRe AssPr MOTA MOTP IDSW Frag FP FN TP MT PT ML IDF1 \
           IDP IDR IDTP IDFP IDFN class_accuracy; do
  grep -qE "^  \"$key\": " "$tmp/out" || fail "--json lacks \"$key\""
done
grep -qE '"HOTA": 1,' "$tmp/out" || fail "perfect tracking: HOTA is not 1: $(cat "$tmp/out")"
grep -qE '"IDSW": 0,' "$tmp/out" || fail "perfect tracking: IDSW is not 0"
grep -qE '"class_accuracy": 0.75,' "$tmp/out" || fail "class accuracy is not 3/4"
grep -q '"events"' "$tmp/out" && fail "--json has events without event files"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" || fail "--json is not JSON"
fi

expect 0 "" "$bin" eval --gt "$gt" --pred "$pred" --events-gt "$tmp/ev.csv" --events-pred "$tmp/ev.csv" --json
grep -q '"events": {' "$tmp/out" || fail "--json lacks the events object"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert set(d["events"]) >= {"merge","split","all"}' \
    "$tmp/out" || fail "events JSON is malformed: $(cat "$tmp/out")"
fi

expect 0 "" "$bin" eval --gt "$gt" --pred "$pred"
grep -qE "^HOTA +100\.000" "$tmp/out" || fail "table lacks the HOTA line: $(cat "$tmp/out")"
grep -qE "^MOTA" "$tmp/out" || fail "table lacks the MOTA line"
grep -qE "^IDF1" "$tmp/out" || fail "table lacks the IDF1 line"

finish eval_errors
