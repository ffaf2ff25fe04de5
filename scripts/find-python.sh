#!/bin/sh
# Print the path of a Python >= 3.12 interpreter, or explain what is missing and exit 1.
# Order: $PYTHON, python3.12/3.13/3.14 on PATH, python3 if recent enough, pyenv versions,
# uv-managed interpreters. ArviZ 1.x (and so differland_bayes) needs Python >= 3.12.
set -u

ok() {  # ok PATH -> true if PATH runs and is Python >= 3.12
    [ -n "$1" ] && "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

tried=""
try() {
    tried="$tried $1"
    if ok "$1"; then
        command -v "$1" 2>/dev/null || printf '%s\n' "$1"
        exit 0
    fi
}

[ -n "${PYTHON:-}" ] && try "$PYTHON"
for name in python3.12 python3.13 python3.14 python3 python; do
    p=$(command -v "$name" 2>/dev/null) && try "$p"
done
root="${PYENV_ROOT:-}"
[ -z "$root" ] && command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null)
[ -z "$root" ] && root="$HOME/.pyenv"
for v in $(ls "$root/versions" 2>/dev/null | grep -E '^3\.1[2-9]\.[0-9]+$' | sort -V); do
    try "$root/versions/$v/bin/python3"
done
for p in $(ls -d "$HOME"/.local/share/uv/python/cpython-3.1[2-9]*/bin/python3 2>/dev/null); do
    try "$p"
done

cat >&2 <<MSG
differland_bayes needs Python >= 3.12 (ArviZ 1.x requires it), with the venv module.
Looked at:${tried:- nothing}
None of them is Python >= 3.12. Install one, for example:
  pyenv install 3.12        (then re-run; pyenv versions are found automatically)
  apt-get install python3.12 python3.12-venv
  uv python install 3.12
or point to one explicitly:  make test PYTHON=/path/to/python3.12
MSG
exit 1
