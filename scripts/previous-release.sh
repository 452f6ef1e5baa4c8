#!/usr/bin/env bash
# Builds the four services of the previous release (the commit recorded in
# tools/chaos/previous-release) from this clone's history, once per commit,
# outside the work tree; prints the directory holding the binaries. The chaos
# harness runs them beside the current binaries (the previous-release fault).
set -euo pipefail
source "$(dirname "$0")/common.sh"

commit=$(grep -v '^#' "$ROOT/tools/chaos/previous-release" | grep -m1 -E '^[0-9a-f]{7,40}$') \
  || die "no commit in tools/chaos/previous-release"
commit=$(git -C "$ROOT" rev-parse --verify --quiet "$commit^{commit}") \
  || die "commit $commit is not in this clone's history (a shallow clone? git fetch --unshallow)"

cache="${CONTRAIL_PREVIOUS_RELEASE_CACHE:-$HOME/.cache/contrail/previous-release}"
source_dir="$cache/$commit"
target_dir="$cache/target"
bin_dir="$target_dir/debug"
stamp="$bin_dir/.built-from"

if [[ -f "$stamp" && "$(<"$stamp")" == "$commit" ]]; then
  echo "$bin_dir"
  exit 0
fi

log "building the previous release ${commit:0:12} (once per commit; into $target_dir)" >&2
rm -rf "$source_dir"
mkdir -p "$source_dir"
# -m: the files get the extraction time, not the commit's. The target
# directory is shared across commits and cargo judges path crates by mtime,
# so sources older than the last commit's artifacts would be taken as built.
git -C "$ROOT" archive "$commit" | tar -x -m -C "$source_dir"
# No debug info and no incremental state: these binaries are built once and only run.
(cd "$source_dir" && CARGO_TARGET_DIR="$target_dir" CARGO_PROFILE_DEV_DEBUG=0 CARGO_INCREMENTAL=0 \
  cargo build --locked --quiet --bins -p flight-inventory -p booking -p payment -p notification) >&2
echo "$commit" >"$stamp"
rm -rf "$source_dir"
echo "$bin_dir"
