#!/usr/bin/env bash
# One-step setup on a fresh machine: Debian packages, then .venv with the pinned set.
# Idempotent: a venv whose stamp matches requirements.lock + pyproject.toml is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(dataset-fashion-mnist cmake g++)
PYTHON=${PYTHON:-python3.11}
VENV=.venv

say() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    say "error: need root or sudo to install Debian packages: ${missing[*]}"; exit 2; fi
  say "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v "$PYTHON" >/dev/null; then
  say "error: $PYTHON not found; tosc needs CPython 3.11 (set PYTHON=/path/to/python3.11)"; exit 2
fi
# VVC encoder (VVenC, source in third_party/vvenc), built once into ~/.cache/tosc; a no-op when built
bash scripts/build_vvenc.sh >/dev/null

stamp="$("$PYTHON" --version 2>&1) $(sha256sum requirements.lock | cut -c1-16)"
project_stamp="$(sha256sum pyproject.toml | cut -c1-16)"
# pip.conf on this machine kind lists local indexes it warns about per package: keep the log readable
quiet_pip() { "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }

if ! { [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.tosc-stamp" 2>/dev/null)" = "$stamp" ]; }; then
  if [ -L "$VENV" ]; then  # venv --clear would empty the folder the link points to, shared or not
    say "error: $VENV is a link to $(readlink -f "$VENV") whose packages do not match requirements.lock;" \
        "not rebuilding through the link (remove the link, or run make setup where the venv lives)"
    exit 2
  fi
  say "creating $VENV with the pinned packages (first time: a few minutes, ~5.5 GB)"
  "$PYTHON" -m venv --clear "$VENV"
  quiet_pip -r requirements.lock
  echo "$stamp" > "$VENV/.tosc-stamp"
  rm -f "$VENV/.tosc-project-stamp"
fi
# the project itself (editable): cheap, redone only when pyproject.toml changed
if [ "$(cat "$VENV/.tosc-project-stamp" 2>/dev/null)" != "$project_stamp" ]; then
  if [ -L "$VENV" ]; then  # an editable install through the link would point the other venv here
    say "error: $VENV is a link to $(readlink -f "$VENV"), installed for another pyproject.toml; not reinstalling"
    exit 2
  fi
  quiet_pip --no-deps --no-build-isolation -e .
  echo "$project_stamp" > "$VENV/.tosc-project-stamp"
  say "ready: $VENV"
fi
