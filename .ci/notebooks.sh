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
  if dotnet dotnet-repl --run "$notebook" --exit-after-run --output-path "$(mktemp --suffix .ipynb)" > /tmp/croc-notebook.log 2>&1; then
    echo "notebook $notebook: ok ($(( $(date +%s) - started )) s)"
  else
    echo "notebook $notebook: FAILED"; cat /tmp/croc-notebook.log; status=1
  fi
done
exit $status
