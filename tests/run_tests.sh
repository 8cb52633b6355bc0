#!/usr/bin/env bash
# The project's test sequence (what `make test` and CI run), in the order of
# STYLE.md: format check, lint, dry runs, unit tests, workflow tests on tiny data.
# Expects the virtualenv's bin on PATH (the Makefile sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
step() { echo; echo "=== [$((SECONDS - t0)) s] $*"; }

step "snakefmt --check"
snakefmt --check Snakefile workflow/rules/

step "lint-imports (layers: io/grid/atlas at the bottom ... cli on top; the package never imports Snakemake)"
lint-imports

step "snakemake --lint"
snakemake --lint --cores 1 --configfile config/config.yaml

step "dry run: default config"
snakemake -n --cores 2 --configfile config/config.yaml --quiet rules

step "dry run: paper config (1306 subjects)"
snakemake -n --cores 2 --configfile config/paper.yaml --quiet rules

step "pytest (unit and workflow tests)"
rc=0
python -m pytest -q -p no:cacheprovider "$@" || rc=$?
if [ "$rc" = 5 ]; then echo "no tests were collected"; exit 1; fi
echo "=== done in $((SECONDS - t0)) s (pytest exit $rc)"
exit "$rc"
