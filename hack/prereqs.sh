#!/usr/bin/env bash
# Checks, in well under a second, what `make demo` and `make test` need
# beyond Go, and installs what is missing from Debian's packages when run
# as root (a fresh machine has no nft). It runs before anything is built,
# so a missing tool is reported at once, never after a long build.
#   hack/prereqs.sh          check, install what is missing (root)
#   hack/prereqs.sh --check  check only
set -euo pipefail

need_go=1.26
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v nsenter >/dev/null || missing+=(util-linux) # a test node's kubelet and containerd enter its network namespace
command -v sysctl >/dev/null || missing+=(procps)
command -v runc >/dev/null || missing+=(runc) # the pods' sandbox in the e2e tests

if ! command -v go >/dev/null; then
  echo "prereqs: go is not on PATH: install Go $need_go or newer (https://go.dev/doc/install)" >&2
  exit 1
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
  echo "prereqs: Go $have_go is too old: this module needs Go $need_go or newer" >&2
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "${1:-}" = --check ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "prereqs: missing ${missing[*]}: install them (e.g. apt-get install ${missing[*]}), as root" >&2
    exit 1
  fi
  echo "prereqs: installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$(id -u)" != 0 ]; then
  echo "prereqs: the demo and the kernel tests make network namespaces: run as root" >&2
  exit 1
fi
