#!/usr/bin/env bash
# Idempotent setup for a fresh machine: Python venv and packages, Java and Maven checks,
# Debian's Chromium for the browser test, and the Maven jars (broker + Spark) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
[[ -n "$PYTHON" ]] || fail "Python 3.11 or 3.12 not found: install python3.11"

apt_install() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    fail "$1 is missing: install the Debian package(s) '$*'"
  fi
  say "installing $* with apt-get"
  if [[ ! -f /tmp/.scm-apt-updated ]]; then
    apt-get update -qq >/dev/null && touch /tmp/.scm-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v java >/dev/null 2>&1 || apt_install openjdk-17-jdk-headless
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[[ "${java_major:-0}" -ge 17 ]] || fail "Java 17 or newer is needed (found ${java_major:-none}): install openjdk-17-jdk"
command -v mvn >/dev/null 2>&1 || apt_install maven
if [[ "${SCM_SKIP_BROWSER:-0}" != 1 ]]; then
  command -v chromium >/dev/null 2>&1 || apt_install chromium
fi

stamp=.venv/.scm-installed
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # Exact versions with hashes (requirements.lock, `make lock` updates it), then the project.
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

# Jars from Maven Central, once, into the usual caches (~/.cache/scm, ~/.m2, ~/.ivy2).
.venv/bin/python -m scm.jars
say "ready"
