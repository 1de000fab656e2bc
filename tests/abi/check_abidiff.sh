#!/bin/bash
# Compares the built library's ABI with the committed baseline (libabigail). An incompatible change
# fails unless the soname's major version changed; added functions are fine.
set -eu
command -v abidiff >/dev/null || { echo "abidiff not installed (Debian package abigail-tools)"; exit 1; }
[ -f "$BASELINE" ] || { echo "no baseline at $BASELINE; create it with: abidw --no-corpus-path --headers-dir include/tfm --out-file $BASELINE $LIBTFM"; exit 1; }
headers=$(dirname "$HEADER")
set +e
abidiff --no-added-syms --headers-dir2 "$headers" "$BASELINE" "$LIBTFM"
rc=$?
set -e
# abidiff's exit status is a bit field: 4 = ABI change, 8 = incompatible change.
if [ $((rc & 8)) -ne 0 ] || [ $((rc & 1)) -ne 0 ]; then
  base_soname=$(grep -o 'soname=.[^ ]*' "$BASELINE" | head -1 | tr -d "'\"" | sed 's/soname=//')
  new_soname=$(objdump -p "$LIBTFM" | awk '/SONAME/ {print $2}')
  if [ "$base_soname" != "$new_soname" ]; then
    echo "incompatible ABI change accepted: soname moved from $base_soname to $new_soname"; exit 0
  fi
  echo "incompatible ABI change against the baseline (abidiff exit $rc) without a major version bump"; exit 1
fi
echo "ABI compatible with the baseline (abidiff exit $rc)"
