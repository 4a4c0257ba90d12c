#!/usr/bin/env bash
# The browser tests (Tests/Browser): the page in a real headless Chromium
# against the running stack. scripts/test starts the stack and exports
# EMAILSETUP_TEST_PORT, _ADMIN_USER, _ADMIN_PASSWORD, _ROOT and _STATE_DIR;
# this script only runs the suite. Ends with one line
#   browser: N passed, M failed
# and a non-zero status on any failure (including a missing variable).
set -uo pipefail
ROOT=${EMAILSETUP_TEST_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"

missing=()
for v in EMAILSETUP_TEST_PORT EMAILSETUP_TEST_ADMIN_USER EMAILSETUP_TEST_ADMIN_PASSWORD EMAILSETUP_TEST_ROOT EMAILSETUP_TEST_STATE_DIR; do
    [[ -n ${!v:-} ]] || missing+=("$v")
done
if (( ${#missing[@]} )); then
    echo "browser tests: not run; unset: ${missing[*]} (run them through scripts/test)" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
fi
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    [[ -x $tool ]] || { echo "browser tests: $tool is missing (apt-get install chromium chromium-driver)" >&2; echo "browser: 0 passed, 1 failed"; exit 1; }
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Extra arguments select tests, e.g. test_settings_form.SettingsFormTests.test_keyboard_only_save
if (( $# )); then
    (cd Tests/Browser && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest -v "$@") 2>&1 | tee "$log"
else
    PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest discover -s Tests/Browser -t Tests/Browser -v 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}

ran=$(grep -Eo '^Ran [0-9]+ tests?' "$log" | grep -Eo '[0-9]+' | tail -1)
failures=$(grep -Eo 'failures=[0-9]+' "$log" | tail -1 | cut -d= -f2)
errors=$(grep -Eo 'errors=[0-9]+' "$log" | tail -1 | cut -d= -f2)
skipped=$(grep -Eo 'skipped=[0-9]+' "$log" | tail -1 | cut -d= -f2)
if [[ -z $ran ]]; then
    echo "no unittest summary found: the browser test run did not complete" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
fi
failed=$(( ${failures:-0} + ${errors:-0} ))
if (( status != 0 && failed == 0 )); then failed=1; fi
echo "browser: $(( ran - failed - ${skipped:-0} )) passed, $failed failed"
exit "$status"
