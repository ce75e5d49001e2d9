#!/usr/bin/env bash
# Debian packages the test suite uses, installed only when missing (needs root or sudo).
#   docker-compose: validates docker-compose.yml (`docker-compose config` needs no engine)
#   redis-server:   the local broker the tests start on a free port (scripts/local_services.py)
set -euo pipefail
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v redis-server >/dev/null || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install_system_deps: please install: ${need[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install_system_deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
