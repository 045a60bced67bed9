#!/usr/bin/env bash
# Install promtool (Debian's prometheus package) for `make tools` without leaving the packaged
# prometheus server running, and without touching any other prometheus on the machine (the
# e2e scrape test and deploy/local/dashboard.sh run their own).
#
# The package's maintainer script starts its service through invoke-rc.d (SysV) or
# deb-systemd-invoke (systemd); both ask /usr/sbin/policy-rc.d first. With no policy on the
# machine, a temporary one that refuses (exit 101) is in place while the package installs, so
# nothing is started and nothing has to be stopped. A policy already there is the machine's
# own (Docker images ship one that refuses every start) and is left alone; if it let the
# service start, that service alone is stopped, through its systemd unit or its init script
# (start-stop-daemon with the package's pid file), never by process name.
set -euo pipefail
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# baton deploy/local/promtool.sh: no service starts while it installs\nexit 101\n' \
    >"$policy"
  chmod 755 "$policy"
  ours=1
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT

install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
}
install || { apt-get update -qq && install; }

if [ -z "$ours" ]; then
  if [ -d /run/systemd/system ]; then
    systemctl stop prometheus.service 2>/dev/null || true
  elif [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi
