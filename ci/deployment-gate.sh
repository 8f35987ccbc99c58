#!/usr/bin/env sh
# Submits a gated deployment to Jira through the deployment-gating app, then waits for the
# change request's decision. Needs only sh, curl, grep and sed.
#
# Exit status: 0 allowed (deploy), 1 prevented or invalid (do not deploy), 2 no decision before
# GATE_TIMEOUT_SECONDS, 3 the submission or the app failed (see stderr).
#
# Required environment:
#   GATE_URL            the app, e.g. https://deployment-gating.example.workers.dev
#   GATE_TOKEN          an API token with deployments:write and gates:read
#   PIPELINE_ID, PIPELINE_NAME, PIPELINE_URL
#   ENVIRONMENT_ID, ENVIRONMENT_NAME, ENVIRONMENT_TYPE (unmapped|development|testing|staging|production)
#   SEQUENCE            the deployment's number (a growing integer, e.g. the CI run number)
#   DEPLOYMENT_URL      link to this run
#   ISSUE_KEYS          space-separated Jira issue keys, e.g. "OPS-12 OPS-13"
# Optional: DEPLOYMENT_NAME, DESCRIPTION, GATE_TIMEOUT_SECONDS (default 3600), GATE_SKIP_SUBMIT=1
# (only wait, for a deployment submitted earlier).
set -u

fail() { echo "deployment-gate: $*" >&2; exit 3; }
for v in GATE_URL GATE_TOKEN PIPELINE_ID PIPELINE_NAME PIPELINE_URL ENVIRONMENT_ID ENVIRONMENT_NAME \
         ENVIRONMENT_TYPE SEQUENCE DEPLOYMENT_URL ISSUE_KEYS; do
  eval "[ -n \"\${$v:-}\" ]" || fail "$v is not set"
done
case "$SEQUENCE" in *[!0-9]*|'') fail "SEQUENCE must be a non-negative integer" ;; esac

# A JSON string: backslashes and quotes escaped, control characters dropped.
json() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# A path segment: everything but unreserved characters percent-encoded.
segment() {
  printf '%s' "$1" | od -An -tx1 -v | tr -s ' \n' '\n' |
    while read -r byte; do
      case "$byte" in
        2d|2e|5f|7e|3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]) printf "\\$(printf '%03o' "0x$byte")" ;;
        '') ;;
        *) printf '%%%s' "$(echo "$byte" | tr a-f A-F)" ;;
      esac
    done
}

auth="Authorization: Bearer $GATE_TOKEN"
body_file=$(mktemp) || fail "mktemp failed"
trap 'rm -f "$body_file"' EXIT

if [ "${GATE_SKIP_SUBMIT:-}" != 1 ]; then
  keys=""
  for k in $ISSUE_KEYS; do keys="$keys${keys:+,}$(json "$k")"; done
  payload=$(printf '{"pipeline":{"id":%s,"displayName":%s,"url":%s},"environment":{"id":%s,"displayName":%s,"type":%s},"deploymentSequenceNumber":%s,"displayName":%s,"url":%s,"description":%s,"issueKeys":[%s],"gate":true}' \
    "$(json "$PIPELINE_ID")" "$(json "$PIPELINE_NAME")" "$(json "$PIPELINE_URL")" \
    "$(json "$ENVIRONMENT_ID")" "$(json "$ENVIRONMENT_NAME")" "$(json "$ENVIRONMENT_TYPE")" \
    "$SEQUENCE" "$(json "${DEPLOYMENT_NAME:-$PIPELINE_NAME #$SEQUENCE}")" "$(json "$DEPLOYMENT_URL")" \
    "$(json "${DESCRIPTION:-Deployment $SEQUENCE of $PIPELINE_NAME}")" "$keys")
  # 502/503 and transport errors: the app already retried Jira, or could not tell whether Jira
  # took the deployment; submitting the same deployment again is safe, so try up to 3 times.
  for attempt in 1 2 3; do
    code=$(curl -sS -o "$body_file" -w '%{http_code}' -X POST "$GATE_URL/api/v1/deployments" \
      -H "$auth" -H 'Content-Type: application/json' --data-binary "$payload") || code=000
    case $code in 000|502|503) [ "$attempt" -lt 3 ] && { sleep 5; continue; } ;; esac
    break
  done
  [ "$code" != 000 ] || fail "could not reach $GATE_URL"
  [ "$code" = 202 ] || fail "submission answered $code: $(cat "$body_file")"
  echo "deployment-gate: submitted $PIPELINE_ID/$ENVIRONMENT_ID/$SEQUENCE; waiting for Jira" >&2
fi

gate="$GATE_URL/api/v1/gates/$(segment "$PIPELINE_ID")/$(segment "$ENVIRONMENT_ID")/$SEQUENCE"
timeout=${GATE_TIMEOUT_SECONDS:-3600}
started=$(date +%s)
while :; do
  left=$((started + timeout - $(date +%s)))
  [ "$left" -gt 0 ] || { echo "deployment-gate: no decision after ${timeout}s" >&2; exit 2; }
  wait=$((left < 60 ? left : 60))
  code=$(curl -sS -o "$body_file" -w '%{http_code}' --max-time $((wait + 15)) "$gate?wait=$wait" -H "$auth") || code=000
  case "$code" in
    200) ;;
    000|502|503|504) sleep 5; continue ;;   # transient: keep waiting within the timeout
    *) fail "gate query answered $code: $(cat "$body_file")" ;;
  esac
  # The gate's own status is the first "status" field (its history comes last).
  status=$(grep -o '"status":"[a-z]*"' "$body_file" | head -n 1 | sed 's/.*:"\(.*\)"/\1/')
  case "$status" in
    allowed) echo "deployment-gate: allowed" >&2; exit 0 ;;
    prevented|invalid) echo "deployment-gate: $status" >&2; exit 1 ;;
    awaiting) ;;
    *) fail "unexpected gate answer: $(cat "$body_file")" ;;
  esac
done
