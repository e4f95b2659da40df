#!/usr/bin/env bash
# Executes every notebook in notebooks/ headlessly with dotnet-repl (a local tool pinned in
# notebooks/.config/dotnet-tools.json). A failing cell makes dotnet-repl exit 2, which fails this
# script. Needs the Release build of src/CrOC.Host (the notebooks #r its output folder).
set -euo pipefail
cd "$(dirname "$0")/../notebooks"
dotnet tool restore
status=0
for notebook in *.ipynb; do
  started=$(date +%s)
  executed=$(mktemp --suffix .ipynb)
  if dotnet dotnet-repl --run "$notebook" --exit-after-run --output-path "$executed" > /tmp/croc-notebook.log 2>&1; then
    echo "notebook $notebook: ok ($(( $(date +%s) - started )) s)"
  else
    # dotnet-repl writes a failing cell's error into the executed notebook, not to its output: a
    # compile error, or a claim that `check` (Checks.fsx) found false (no such line when dotnet-repl
    # died first: || true keeps set -e from skipping the other notebooks)
    echo "notebook $notebook: FAILED"; cat /tmp/croc-notebook.log
    { grep -o -e 'Error input.fsx[^"]*' -e 'check failed: [^"\\]*' "$executed" || true; } | head -n 5; status=1
  fi
  rm -f "$executed"
done
exit $status
