# lib.sh: what the shell tests share; source it after setting nothing.
# ok NAME / bad NAME [DETAIL] count results; finish prints "N passed, M
# failed" and exits 1 when anything failed.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() {
  fail=$((fail + 1))
  echo "FAIL - $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/     | /'; fi
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] && exit 0
  exit 1
}
