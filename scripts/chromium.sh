#!/usr/bin/env bash
# Make sure the browser the admin page tests drive is there: Debian's Chromium at
# /usr/bin/chromium (or $HB_TEST_CHROMIUM). Installs it with apt-get when this machine
# can (root and apt-get); otherwise fails with what to install. Never skips. Playwright
# drives this browser; its own browser downloads are never used.
set -uo pipefail

CHROMIUM="${HB_TEST_CHROMIUM:-/usr/bin/chromium}"

runs() { [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; }

ensure_chromium() {
  runs && return 0
  if [ -z "${HB_TEST_CHROMIUM:-}" ] && command -v apt-get >/dev/null 2>&1 \
      && [ "$(id -u)" = 0 ]; then
    echo "Chromium is not at $CHROMIUM; installing it with apt-get…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q chromium >/dev/null 2>&1 || true
    runs && return 0
  fi
  cat >&2 <<MSG
ERROR: the admin page tests (tests/e2e/test_admin_page.py) need Chromium at $CHROMIUM.
Install it (Debian: apt-get install chromium; on Ubuntu the chromium package wants snap,
use Debian's or another build) or point HB_TEST_CHROMIUM at a Chromium or Chrome
executable, then run the test command again.
MSG
  return 1
}

case "${1:-ensure}" in
  ensure) ensure_chromium ;;
  *) echo "usage: $0 [ensure]" >&2; exit 2 ;;
esac
