#!/usr/bin/env bash
# Check template.yaml and statemachine/*.asl.json offline (no AWS account, no Docker):
#   1. sam validate           SAM transform (aws-sam-translator): invalid event types, bad SAM properties
#   2. sam validate --lint    cfn-lint through the SAM CLI
#   3. cfn-lint template.yaml the project venv's cfn-lint on the SAM template
#   4. cfn-lint on the transformed template: the SAM transform's CloudFormation output, which is
#      where wrong GetAtt attributes inside SAM policy templates show up; also fails on a
#      dependency cycle (bucket <-> notification <-> function, state machine <-> function)
#   5. statelint              ASL graph: Next targets, reachability, terminal states
#   6. checkov template.yaml  security policy checks (encryption, logging, public access, ...) on the
#                             SAM template
#   7. checkov on the transformed template: the same checks plus those of the resources SAM
#                             generates (IAM roles and their policies, Lambda permissions, API stage)
# Every step runs; the script exits non-zero if any failed.
#
# checkov fails on every finding that is not skipped. A finding is either fixed in template.yaml or
# skipped on its resource with the reason, never on the command line:
#   Metadata:
#     checkov:
#       skip:
#         - id: CKV_AWS_117
#           comment: why this check does not apply here
# Skips written on a SAM resource also cover the resources SAM generates from it
# (tests/template/checkov_skips.py). checkov runs offline: --skip-download (no Prisma Cloud calls)
# and CKV_SKIP_PACKAGE_UPDATE_CHECK (no PyPI version check).
#
# The SAM CLI pins boto3, so it lives in its own venv (.venv-sam, created here when missing); checkov
# pins many libraries too, so it has one of its own (.venv-checkov, likewise).
# Usage: bash scripts/check_template.sh        (from anywhere; works in the repository root)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
SAM_VENV=.venv-sam
SAM_VERSION=1.170.0
CHECKOV_VENV=.venv-checkov
CHECKOV_VERSION=3.3.30
VENV=.venv
REGION=us-east-1
export SAM_CLI_TELEMETRY=0
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$REGION}"

if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
    echo "==> creating $SAM_VENV with aws-sam-cli==$SAM_VERSION"
    "$PYTHON" -m venv "$SAM_VENV" || exit 1
    "$SAM_VENV/bin/python" -m pip install --quiet "aws-sam-cli==$SAM_VERSION" || exit 1
fi
# The stamp names the version, so changing CHECKOV_VERSION reinstalls.
if [[ ! -f "$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION" ]]; then
    echo "==> installing checkov==$CHECKOV_VERSION in $CHECKOV_VENV"
    [[ -x "$CHECKOV_VENV/bin/python" ]] || "$PYTHON" -m venv "$CHECKOV_VENV" || exit 1
    "$CHECKOV_VENV/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION" || exit 1
    rm -f "$CHECKOV_VENV"/.installed-checkov-* && touch "$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION"
fi
for tool in "$VENV/bin/cfn-lint" "$VENV/bin/statelint"; do
    if [[ ! -x "$tool" ]]; then
        echo "missing $tool: create the project venv first (make venv)" >&2
        exit 1
    fi
done

shopt -s nullglob
ASL_FILES=(statemachine/*.asl.json)
if [[ ${#ASL_FILES[@]} -eq 0 ]]; then
    echo "no statemachine/*.asl.json found" >&2
    exit 1
fi

TRANSFORMED="$(mktemp -d)"
trap 'rm -rf "$TRANSFORMED"' EXIT

failed=()

run() {  # run NAME COMMAND...: print, time, remember failures
    local name="$1"
    shift
    echo "==> $name"
    local start=$SECONDS
    if "$@"; then
        echo "    ok ($((SECONDS - start)) s)"
    else
        echo "    FAILED: $name" >&2
        failed+=("$name")
    fi
}

translate() {
    "$SAM_VENV/bin/python" tests/template/cfn_template.py template.yaml >"$TRANSFORMED/template.json" \
        && "$VENV/bin/cfn-lint" "$TRANSFORMED/template.json"
}

run_checkov() {  # run_checkov --file FILE: every failed check is listed (no code excerpts); fails if any
    "$CHECKOV_VENV/bin/checkov" --framework cloudformation --quiet --compact --skip-download "$@"
}

checkov_transformed() {  # needs the transform step's output
    if [[ ! -s "$TRANSFORMED/template.json" ]]; then
        echo "no transformed template (the SAM transform step failed)" >&2
        return 1
    fi
    "$SAM_VENV/bin/python" tests/template/checkov_skips.py template.yaml "$TRANSFORMED/template.json" \
        >"$TRANSFORMED/template-checkov.json" \
        && run_checkov --file "$TRANSFORMED/template-checkov.json"
}

# samconfig.toml sets `lint = true` for validate; a config env that does not exist makes this run
# the plain SAM transform, which catches what --lint alone misses.
run "sam validate" "$SAM_VENV/bin/sam" validate --region "$REGION" -t template.yaml --config-env no-samconfig
run "sam validate --lint" "$SAM_VENV/bin/sam" validate --lint --region "$REGION" -t template.yaml
run "cfn-lint template.yaml" "$VENV/bin/cfn-lint" template.yaml
run "cfn-lint on the transformed template (and cycle check)" translate
run "statelint ${ASL_FILES[*]}" "$VENV/bin/statelint" "${ASL_FILES[@]}"
run "checkov template.yaml" run_checkov --file template.yaml
run "checkov on the transformed template" checkov_transformed

if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'template checks failed: %s\n' "${failed[*]}" >&2
    exit 1
fi
echo "template checks passed"
