#!/usr/bin/env bash
# Install Autobahn|Testsuite (wstest) for the conformance harness.
#
# wstest only runs on Python 2.7, which Debian 12 (bookworm) does not ship, so:
#   1. python2.7 comes from Debian 11 (bullseye), through an extra apt source that
#      uses the same mirror as /etc/apt/sources.list.d/debian.sources;
#   2. a Python 3 venv (compliance/.cache/venv3) provides virtualenv 20.21.1, the
#      last release able to create Python 2.7 environments;
#   3. compliance/.cache/wstest-venv (Python 2.7) gets autobahntestsuite with its
#      Python 2 dependencies pinned to versions that import and run.
#
# Idempotent: every step that is already done is skipped. Runs as root without stdin
# (CI=true). Exits non-zero on failure. Set PYTHON3 to choose the Python 3 used for
# the helper venv (default: python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${COMPLIANCE_CACHE:-$HERE/.cache}"  # override only to test this script
VENV3="$CACHE/venv3"
WSVENV="$CACHE/wstest-venv"
PY2=/usr/bin/python2.7
PYTHON3="${PYTHON3:-python3}"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

# This machine's pip configuration may name local extra indexes that do not exist; pip
# then warns once per package. Drop those lines, keep everything else and pip's status.
quiet_pip() {
    local rc
    set +e
    "$@" 2>&1 | grep -v "^WARNING: \(Url\|Location\) 'file:.*is ignored: it is neither a file nor a directory" \
             | grep -v "^DEPRECATION: Python 2.7 reached the end of its life"
    rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || true
fi

# Versions known to work together on Python 2.7 (the last releases that still
# support it, where the newest would not install or import).
WSTEST_PINS=(
    "autobahntestsuite==0.8.2"
    "autobahn[twisted]==0.10.9"
    "twisted==20.3.0"
    "zope.interface==5.5.2"
    "pyopenssl==21.0.0"
    "cryptography==3.3.2"
    "cffi==1.15.1"
    "pycparser==2.21"
    "six==1.16.0"
    "service-identity==21.1.0"
    "pyasn1==0.4.8"
    "pyasn1-modules==0.2.8"
    "attrs==21.4.0"
    "automat==20.2.0"
    "constantly==15.1.0"
    "incremental==21.3.0"
    "hyperlink==21.0.0"
    "idna==2.10"
    "pyhamcrest==1.10.1"
    "klein==17.10.0"
    "werkzeug==1.0.1"
    "jinja2==2.11.3"
    "markupsafe==1.1.1"
    "treq==20.9.0"
    "requests==2.27.1"
    "urllib3==1.26.18"
    "certifi==2021.10.8"
    "chardet==4.0.0"
    "boto==2.49.0"
    "unittest2==1.1.0"
    "traceback2==1.4.0"
    "linecache2==1.0.0"
    "argparse==1.4.0"
    "enum34==1.1.10"
    "ipaddress==1.0.23"
    "typing==3.10.0.0"
    "setuptools<45"
)

wstest_ok() {
    [ -x "$WSVENV/bin/wstest" ] \
        && "$WSVENV/bin/python" -c "import autobahntestsuite, autobahn, twisted; from autobahntestsuite import wstest" >/dev/null 2>&1 \
        && "$WSVENV/bin/wstest" --help >/dev/null 2>&1
}

wsaccel_ok() { "$WSVENV/bin/python" -c "import wsaccel" >/dev/null 2>&1; }

# wsaccel: C versions of the fuzzingserver's UTF-8 validator and XOR masker. Without it the
# server validates and unmasks in pure Python, and the 12.*/13.* cases run ~8 times slower
# (a full run takes over an hour instead of ~10 minutes). Built from source: needs a C
# compiler and python2.7-dev. Optional: the harness works without it.
install_wsaccel() {
    if wsaccel_ok; then return 0; fi
    log "pip install wsaccel (C accelerators for the fuzzingserver)"
    if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
        log "no C compiler: apt-get install gcc"
        $SUDO apt-get install -y -q gcc </dev/null || log "WARNING: could not install gcc"
    fi
    if ! quiet_pip "$WSVENV/bin/pip" install -q "wsaccel==0.6.2"; then
        log "WARNING: wsaccel did not install: wstest works, but the 12.*/13.* cases will be slow"
    fi
}

if wstest_ok; then
    log "wstest already installed: $WSVENV/bin/wstest"
    install_wsaccel
    exit 0
fi

mkdir -p "$CACHE"
START=$(date +%s)

# --- 1. python2.7 from bullseye -------------------------------------------------
if [ -x "$PY2" ]; then
    log "python2.7 present: $PY2"
else
    SRC=/etc/apt/sources.list.d/debian.sources
    [ -r "$SRC" ] || die "$SRC not found: cannot tell which Debian mirror to use"
    # First stanza whose Suites contain the release itself (not -security).
    read -r URI SIGNED < <(awk '
        BEGIN { RS=""; FS="\n" }
        {
            uri=""; sig=""; suites="";
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", $i); uri=$i }
                if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); sig=$i }
                if ($i ~ /^Suites:/)    { suites=$i }
            }
            if (uri != "" && suites !~ /security/) { split(uri, u, /[ \t]+/); print u[1], sig; exit }
        }' "$SRC")
    [ -n "${URI:-}" ] || die "no Debian mirror URI found in $SRC"
    log "adding bullseye apt source (mirror $URI)"
    {
        echo "Types: deb"
        echo "URIs: $URI"
        echo "Suites: bullseye"
        echo "Components: main"
        [ -n "${SIGNED:-}" ] && echo "Signed-By: $SIGNED"
    } | $SUDO tee /etc/apt/sources.list.d/bullseye.sources >/dev/null
    # Keep bookworm the default release: bullseye packages only when asked for.
    printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' \
        | $SUDO tee /etc/apt/preferences.d/bullseye-python2 >/dev/null
    log "apt-get update"
    $SUDO apt-get update -q || die "apt-get update failed"
    log "apt-get install -t bullseye python2.7 python2.7-dev"
    $SUDO apt-get install -y -q -t bullseye python2.7 python2.7-dev </dev/null \
        || die "apt-get install python2.7 failed"
    [ -x "$PY2" ] || die "$PY2 missing after install"
fi
log "$("$PY2" --version 2>&1)"

# --- 2. Python 3 venv with virtualenv 20.21.1 -----------------------------------
if [ -x "$VENV3/bin/virtualenv" ] && "$VENV3/bin/virtualenv" --version 2>/dev/null | grep -q '20\.21\.1'; then
    log "virtualenv present: $VENV3/bin/virtualenv"
else
    log "creating $VENV3"
    rm -rf "$VENV3"
    if ! "$PYTHON3" -m venv "$VENV3"; then
        log "python3 -m venv failed: installing python3-venv"
        rm -rf "$VENV3"
        $SUDO apt-get install -y -q python3-venv </dev/null || die "apt-get install python3-venv failed"
        "$PYTHON3" -m venv "$VENV3" || die "python3 -m venv failed"
    fi
    quiet_pip "$VENV3/bin/pip" install -q "virtualenv==20.21.1" || die "pip install virtualenv failed"
fi

# --- 3. Python 2.7 venv with autobahntestsuite -----------------------------------
if [ -x "$WSVENV/bin/python" ] && "$WSVENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
    log "python2.7 venv present: $WSVENV"
else
    rm -rf "$WSVENV"
    log "creating $WSVENV"
    "$VENV3/bin/virtualenv" -q -p "$PY2" "$WSVENV" || die "virtualenv -p python2.7 failed"
fi
log "pip install autobahntestsuite (pinned Python 2 dependencies)"
quiet_pip "$WSVENV/bin/pip" install -q "${WSTEST_PINS[@]}" || die "pip install autobahntestsuite failed"

wstest_ok || die "wstest does not run: try $WSVENV/bin/wstest --help"
install_wsaccel
log "wstest installed: $WSVENV/bin/wstest ($(( $(date +%s) - START )) s)"
