#!/bin/sh
# An operator's first order, the way an MNO back end places it over ES2+ (SGP.22 §5.3):
# DownloadOrder reserves a profile of PROFILE_TYPE, ConfirmOrder with releaseFlag true fixes its
# MatchingID and releases it. Prints the ICCID, the MatchingID and the Activation Code; exits
# non-zero when a call fails.
#
# POSIX sh and curl only (it runs in the curlimages/curl container of the compose example).
# On a host, against a mock started with the compose scenario:
#   SMDPP_URL=https://localhost:6443 CERTS_DIR=./certs sh examples/compose/client.sh
#
# Environment:
#   SMDPP_URL     base URL of the SM-DP+            (default https://smdpp:6443)
#   OPERATOR      operator id: certificate name and functionRequesterIdentifier (default test-mno)
#   CERTS_DIR     directory with ca.pem, $OPERATOR.pem and $OPERATOR.key (default /certs)
#   PROFILE_TYPE  profile type to order             (default STANDARD)

set -eu

SMDPP_URL=${SMDPP_URL:-https://smdpp:6443}
OPERATOR=${OPERATOR:-test-mno}
CERTS_DIR=${CERTS_DIR:-/certs}
PROFILE_TYPE=${PROFILE_TYPE:-STANDARD}
ADMIN_PROTOCOL=gsma/rsp/v2.5.0
SMDPP_URL=${SMDPP_URL%/}
CALLS=0

fail() {
    printf 'client.sh: %s\n' "$*" >&2
    exit 1
}

for file in ca.pem "$OPERATOR.pem" "$OPERATOR.key"; do
    [ -r "$CERTS_DIR/$file" ] || fail "cannot read $CERTS_DIR/$file (set CERTS_DIR; the mock writes its test PKI on first start)"
done

# The string value of KEY in the JSON text on stdin ("" when absent). The mock answers compact
# one-line JSON, and none of the values read here can contain a quote or a backslash.
field() {
    sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1
}

# curl with the operator's client certificate; ARGS... are appended. The body on stdout.
mtls() {
    curl --silent --show-error --fail-with-body --max-time 15 \
        --cacert "$CERTS_DIR/ca.pem" \
        --cert "$CERTS_DIR/$OPERATOR.pem" --key "$CERTS_DIR/$OPERATOR.key" \
        -H "X-Admin-Protocol: $ADMIN_PROTOCOL" \
        "$@"
}

# A functionCallIdentifier unique to this call.
call_id() {
    CALLS=$((CALLS + 1))
    if [ -r /proc/sys/kernel/random/uuid ]; then
        read -r uuid </proc/sys/kernel/random/uuid
        CALL_ID="client-$uuid"
    else
        CALL_ID="client-$(date +%s)-$$-$CALLS"
    fi
}

# es2 FUNCTION FIELDS: POST one ES2+ function (FIELDS: the body's members after the header) and
# set ANSWER; fails unless the answer is Executed-Success.
es2() {
    call_id
    body="{\"header\":{\"functionRequesterIdentifier\":\"$OPERATOR\",\"functionCallIdentifier\":\"$CALL_ID\"},$2}"
    printf '> %s %s\n' "$1" "$body" >&2
    ANSWER=$(mtls -H 'Content-Type: application/json' \
        --data "$body" "$SMDPP_URL/gsma/rsp2/es2plus/$1") ||
        fail "$1 failed (curl exit $?): ${ANSWER:-no answer}"
    printf '< %s\n' "$ANSWER" >&2
    case $ANSWER in
        *'"Executed-Success"'*) ;;
        *) fail "$1 did not answer Executed-Success: $ANSWER" ;;
    esac
}

es2 downloadOrder "\"profileType\":\"$PROFILE_TYPE\""
ICCID=$(printf '%s' "$ANSWER" | field iccid)
[ -n "$ICCID" ] || fail "downloadOrder answered no iccid: $ANSWER"

es2 confirmOrder "\"iccid\":\"$ICCID\",\"releaseFlag\":true"
MATCHING_ID=$(printf '%s' "$ANSWER" | field matchingId)
[ -n "$MATCHING_ID" ] || fail "confirmOrder answered no matchingId: $ANSWER"

# SGP.22 ConfirmOrder returns only eid and matchingId (Table 26): the operator builds the
# Activation Code 1$<SM-DP+ address>$<MatchingID> (§4.1) itself. Take one from the answer if an
# SM-DP+ adds it, else ask the mock's platform API (same port, same certificate), which knows
# the SM-DP+ address of its scenario.
ACTIVATION_CODE=$(printf '%s' "$ANSWER" | field activationCode)
if [ -z "$ACTIVATION_CODE" ]; then
    PROFILE=$(mtls "$SMDPP_URL/profiles/$ICCID") ||
        fail "GET /profiles/$ICCID failed: ${PROFILE:-no answer}"
    ACTIVATION_CODE=$(printf '%s' "$PROFILE" | field activationCode)
    [ -n "$ACTIVATION_CODE" ] || fail "GET /profiles/$ICCID answered no activationCode: $PROFILE"
fi

printf 'ICCID:           %s\n' "$ICCID"
printf 'MatchingID:      %s\n' "$MATCHING_ID"
printf 'Activation Code: %s\n' "$ACTIVATION_CODE"
printf 'QR code text:    LPA:%s\n' "$ACTIVATION_CODE"
