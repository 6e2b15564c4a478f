# Shared by the command-line tests (sourced, not run): the scratch folder, a failure counter and
# `expect`.  The sourcing script sets bin, src and tmp first.
rm -rf "$tmp" && mkdir -p "$tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE PATTERN CMD...: exit status CODE and, when PATTERN is not empty, exactly one line
# on stderr, matching PATTERN (extended regex).  stdout and stderr stay in $tmp/out, $tmp/err.
expect() {
  local code=$1 pat=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  [ "$rc" = "$code" ] || { fail "$* exited $rc, expected $code; stderr: $(cat "$tmp/err")"; return; }
  if [ -n "$pat" ]; then
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$*: expected one error line, got: $(cat "$tmp/err")"
    grep -qE -- "$pat" "$tmp/err" || fail "$*: stderr '$(cat "$tmp/err")' does not match '$pat'"
  fi
}
# finish NAME: exit 1 with the failure count, or say that all passed.
finish() {
  [ "$fails" = 0 ] || { echo "$1: $fails failure(s)"; exit 1; }
  echo "$1: all checks passed"
}
