#!/bin/bash
# Every dynamic symbol libtfm exports starts with tfm_, and it is exactly the set of functions the
# public header marks TFM_API (nothing internal leaks, nothing declared is missing).
set -eu
exported=$(nm -D --defined-only "$LIBTFM" | awk '$2 ~ /^[TDBRV]$/ {print $3}' | sed 's/@.*//' | grep -v '^TFM_' | sort -u)
bad=$(printf '%s\n' "$exported" | grep -v '^tfm_' || true)
if [ -n "$bad" ]; then
  echo "symbols exported without the tfm_ prefix:"; printf '%s\n' "$bad"; exit 1
fi
declared=$(grep -E '^TFM_API ' "$HEADER" | sed 's/(.*//' | awk '{print $NF}' | tr -d '*' | sort -u)
if [ "$exported" != "$declared" ]; then
  echo "export list differs from the TFM_API declarations in tfm.h (< exported, > declared):"
  diff <(printf '%s\n' "$exported") <(printf '%s\n' "$declared") || true
  exit 1
fi
echo "$(printf '%s\n' "$exported" | wc -l) exported symbols, all tfm_* and all declared in tfm.h"
