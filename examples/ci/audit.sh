#!/usr/bin/env bash
# Audit every ONNX model of a folder as a CI step.
#
#   examples/ci/audit.sh [FOLDER] [REPORT_DIR] [extra audit flags...]
#
# The exit status is the gate (0 every check passed, 1 a check failed, 2 usage error); the three
# reports are for tools (JSON, JUnit XML for the CI's test view) and for people (one HTML page).
set -euo pipefail
folder="${1:-models}"
reports="${2:-audit-report}"
mkdir -p "$reports"
exec dmbp-onnx audit "$folder" \
    --json "$reports/audit.json" \
    --junit "$reports/audit.xml" \
    --html "$reports/audit.html" \
    "${@:3}"
