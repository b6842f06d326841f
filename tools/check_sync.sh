#!/usr/bin/env bash
# Run a command (nbdev-clean or nbdev-export) and fail if it changed any tracked file or created an untracked one.
# CI uses it to prove that notebooks are clean and that bioss_nb/ is exactly what the notebooks export.
set -u
cmd=("$@")
snapshot() {
  git ls-files -z | xargs -0 sha1sum 2>/dev/null
  git ls-files --others --exclude-standard
}
before=$(snapshot)
"${cmd[@]}" >/dev/null || { echo "check_sync: '${cmd[*]}' failed" >&2; exit 1; }
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "check_sync: '$(basename "${cmd[0]}")' changed these files:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^>' | sed 's/^> *//; s/^[0-9a-f]\{40\}  //' >&2
  case "$(basename "${cmd[0]}")" in
    nbdev-clean)  echo "Notebooks were not clean: run nbdev-clean and commit the result." >&2 ;;
    nbdev-export) echo "Library out of sync with the notebooks: run nbdev-export and commit bioss_nb/." >&2 ;;
  esac
  exit 1
fi
echo "check_sync: $(basename "${cmd[0]}") changed nothing"
