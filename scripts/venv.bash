# Sourced by scripts/setup, scripts/test and scripts/demo from the checkout's root: where the project's
# virtual environment is (CONTIV_VENV, default .venv in the checkout), and how a script runs from it
# without the user activating anything.
CONTIV_VENV=$(realpath -m "${CONTIV_VENV:-.venv}")
export CONTIV_VENV

# The environment's bin/ first on PATH for this script and its children: its python3, netctl, netmaster,
# pytest; `python3 -m ...` in a test or in the demo finds the project's packages.
use_venv() {
    if [ ! -x "$CONTIV_VENV/bin/python" ]; then
        echo "$0: no virtual environment at $CONTIV_VENV; run scripts/setup first" >&2
        exit 1
    fi
    export VIRTUAL_ENV="$CONTIV_VENV" PATH="$CONTIV_VENV/bin:$PATH"
}
