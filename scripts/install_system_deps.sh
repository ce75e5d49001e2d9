#!/usr/bin/env bash
# Debian packages facereg uses, installed only when missing (needs root or sudo).
#   --runtime: only what running it locally needs (redis-server); default: also what the tests need.
#   docker-compose: validates docker-compose.yml (`docker-compose config` needs no engine)
#   redis-server:   the local broker the tests start on a free port (scripts/local_services.py)
#   chromium:       the headless browser of the dashboard's end-to-end test (driven by Playwright)
#   nginx:          checks the token-checking proxy that docker-compose puts in front of Chroma
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ "${1:-}" != "--runtime" ]; then
  command -v docker-compose >/dev/null || need+=(docker-compose)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/sbin/nginx ] || need+=(nginx)
fi
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
