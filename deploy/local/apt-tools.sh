#!/usr/bin/env bash
# Install Debian packages the checks use (kcat, prometheus-alertmanager for amtool) for
# `make tools`, without leaving any packaged service running: the same approach as
# deploy/local/promtool.sh. While the packages install, a temporary /usr/sbin/policy-rc.d that
# refuses (exit 101) keeps their maintainer scripts from starting services; a policy already on
# the machine is its own and left alone, and a service it let start is stopped through its
# systemd unit or init script (never by process name).
#
# usage: deploy/local/apt-tools.sh PACKAGE...
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# baton deploy/local/apt-tools.sh: no service starts while it installs\nexit 101\n' \
    >"$policy"
  chmod 755 "$policy"
  ours=1
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT

install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
install "$@" || { apt-get update -qq && install "$@"; }

if [ -z "$ours" ]; then
  for pkg in "$@"; do
    case "$pkg" in
      prometheus-alertmanager) unit=prometheus-alertmanager ;;
      nginx|nginx-light) unit=nginx ;;
      *) continue ;;
    esac
    if [ -d /run/systemd/system ]; then
      systemctl stop "$unit.service" 2>/dev/null || true
    elif [ -x "/etc/init.d/$unit" ]; then
      "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
    fi
  done
fi
