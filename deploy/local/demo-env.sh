# Local-only secrets for `make run` / `make demo` / tests: generated once into .local/secrets.env
# (git-ignored) so no secret is ever committed. Sourced, not executed.
_baton_local="${BATON_LOCAL_DIR:-${BATON_ROOT:-$(pwd)}/.local}"
mkdir -p "$_baton_local"
if [ ! -f "$_baton_local/secrets.env" ]; then
  _rand() { head -c 24 /dev/urandom | base64 | tr -d '\n'; }
  _admin="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  {
    echo "BATON_SECRET_CHAT_WIDGET=whsec_$(_rand)"
    echo "BATON_SECRET_TYPEFORM=$(_rand)"
    echo "BATON_SECRET_HUBSPOT=$(_rand)"
    echo "BATON_DEMO_TOKEN=$_admin"
    echo "API_TOKENS=demo:admin:$(printf '%s' "$_admin" | sha256sum | cut -d' ' -f1)"
  } > "$_baton_local/secrets.env"
  chmod 600 "$_baton_local/secrets.env"
fi
# notify's local webhook sink (deploy/notify.example.yaml); appended to older secrets files
if ! grep -q '^BATON_NOTIFY_SECRET_LOCAL_SINK=' "$_baton_local/secrets.env"; then
  echo "BATON_NOTIFY_SECRET_LOCAL_SINK=whsec_$(head -c 24 /dev/urandom | base64 | tr -d '\n')" \
    >> "$_baton_local/secrets.env"
fi
# followup's crm-activities source (deploy/policy.example.yaml: activity_sources)
if ! grep -q '^BATON_SECRET_CRM_ACTIVITIES=' "$_baton_local/secrets.env"; then
  echo "BATON_SECRET_CRM_ACTIVITIES=whsec_$(head -c 24 /dev/urandom | base64 | tr -d '\n')" \
    >> "$_baton_local/secrets.env"
fi
# notify's people channels go to the local sinks (deploy/local/sinks.py): a local-only Slack
# bot token for the fake Slack Web API, SMTP without TLS on port 1025
if ! grep -q '^SLACK_BOT_TOKEN=' "$_baton_local/secrets.env"; then
  echo "SLACK_BOT_TOKEN=xoxb-local-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    >> "$_baton_local/secrets.env"
fi
export SLACK_BASE_URL="${SLACK_BASE_URL:-http://127.0.0.1:8026/api/}"
export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-1025}" SMTP_STARTTLS="${SMTP_STARTTLS:-false}"
set -a; source "$_baton_local/secrets.env"; set +a
