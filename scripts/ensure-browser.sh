#!/usr/bin/env bash
# Makes sure a headless browser and its WebDriver are installed for the
# operator console's browser tests (tests/system/tests/api/console.rs):
# Debian's `chromium` and `chromium-driver` (which provides `chromedriver`).
# The tests start chromedriver themselves on a free port and stop it.
# CONTRAIL_CHROMIUM and CONTRAIL_CHROMEDRIVER may name other binaries.
set -euo pipefail
source "$(dirname "$0")/common.sh"

missing=()
command -v "${CONTRAIL_CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
command -v "${CONTRAIL_CHROMEDRIVER:-chromedriver}" >/dev/null || missing+=(chromium-driver)
((${#missing[@]})) || exit 0
log "installing ${missing[*]} from Debian's packages (the console's browser tests)"
apt_install "${missing[@]}"
