#!/usr/bin/env bash
# Installs what the tests need beyond npm, on Debian (CI runs as root on a fresh machine).
#
# Today: a gRPC client toolchain that is not ours, for the foreign-client test
# (test/python/runnel_client_test.py, driven by test/integration/python-client.test.ts):
#   python3-grpcio          Debian's Python gRPC runtime (pulls in python3-protobuf)
#   protobuf-compiler       Debian's protoc, to generate the Python messages from proto/
#   protobuf-compiler-grpc  Debian's grpc_python_plugin, to generate the Python service stubs
# Not python3-grpc-tools: on Debian 12 it is 1.14.1 and bundles libprotoc 3.5.1, which rejects
# proto3 `optional` (common.proto uses it for null vs empty keys and values).
#
# Uses Debian's /usr/bin/python3 explicitly: another python3 (pyenv, venv) may come first on
# PATH and would not see the apt-installed modules.
#
# Idempotent and fast when everything is present (it only checks). When something is missing
# it needs root and apt-get; otherwise it exits non-zero saying what to install.
set -euo pipefail

PYTHON=/usr/bin/python3
PROTOC=/usr/bin/protoc
GRPC_PYTHON_PLUGIN=/usr/bin/grpc_python_plugin
PACKAGES=(python3-grpcio protobuf-compiler protobuf-compiler-grpc)

missing() {
  local what=()
  if ! { [ -x "$PYTHON" ] && "$PYTHON" -c 'import grpc, google.protobuf' >/dev/null 2>&1; }; then
    what+=("$PYTHON cannot import grpc")
  fi
  [ -x "$PROTOC" ] || what+=("no $PROTOC")
  [ -x "$GRPC_PYTHON_PLUGIN" ] || what+=("no $GRPC_PYTHON_PLUGIN")
  [ "${#what[@]}" -eq 0 ] || printf '%s; ' "${what[@]}" | sed 's/; $//'

}

fail() {
  echo "install-test-deps: $*" >&2
  echo "install-test-deps: install them by hand: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
  exit 1
}

installed_versions() {
  dpkg-query -W -f='${Package} ${Version}, ' "${PACKAGES[@]}" python3-protobuf 2>/dev/null | sed 's/, $//'
}

gap="$(missing)"
if [ -z "$gap" ]; then
  echo "install-test-deps: Python gRPC toolchain already present ($(installed_versions)); nothing to do"
  exit 0
fi

echo "install-test-deps: missing: $gap; installing ${PACKAGES[*]}"
if [ "$(id -u)" -ne 0 ]; then
  fail "not running as root (uid $(id -u)), cannot apt-get install ${PACKAGES[*]}"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  fail "apt-get not found (not a Debian-like system), cannot install ${PACKAGES[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
# Update the package lists only when they do not know the packages yet (a fresh image has
# none), and at most once.
if ! apt-cache show "${PACKAGES[@]}" >/dev/null 2>&1; then
  echo "install-test-deps: apt-get update"
  apt-get update -q || fail "apt-get update failed"
  updated=1
fi
echo "install-test-deps: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; then
  # Stale lists (a version gone from the mirror): refresh once and retry.
  [ "$updated" -eq 0 ] || fail "apt-get install ${PACKAGES[*]} failed"
  echo "install-test-deps: install failed; apt-get update and retry once"
  apt-get update -q || fail "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" || fail "apt-get install ${PACKAGES[*]} failed"
fi

gap="$(missing)"
[ -z "$gap" ] || fail "installed ${PACKAGES[*]} but still missing: $gap"
echo "install-test-deps: installed: $(installed_versions)"
