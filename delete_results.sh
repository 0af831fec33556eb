#!/usr/bin/env bash
# Delete the search's results: JSON results, saved models, plots, reports and results.pkl (and its lock).
# Asks first; -y skips the question. Honours HKS_RESULTS_DIR and HKS_TRIALS_FILE, relative to the
# current folder, as a search run from here writes them.
set -euo pipefail

results_dir="${HKS_RESULTS_DIR:-results}"
trials_file="${HKS_TRIALS_FILE:-results.pkl}"
assume_yes=0
case "${1:-}" in
  -y|--yes) assume_yes=1 ;;
  "") ;;
  *) echo "usage: $0 [-y]" >&2; exit 2 ;;
esac

targets=()
[ -e "$trials_file" ] && targets+=("$trials_file")
[ -e "$trials_file.lock" ] && targets+=("$trials_file.lock")
if [ -d "$results_dir" ]; then
  while IFS= read -r -d '' path; do targets+=("$path"); done \
    < <(find "$results_dir" -mindepth 1 -maxdepth 1 ! -name README.md ! -name .gitkeep -print0)
fi

if [ ${#targets[@]} -eq 0 ]; then
  echo "nothing to delete"
  exit 0
fi
printf 'will delete:\n'; printf '  %s\n' "${targets[@]}"
if [ "$assume_yes" -ne 1 ]; then
  read -r -p "delete these ${#targets[@]} entries? [y/N] " answer
  case "$answer" in y|Y|yes|YES) ;; *) echo "nothing deleted"; exit 1 ;; esac
fi
rm -rf -- "${targets[@]}"
echo "deleted ${#targets[@]} entries"
