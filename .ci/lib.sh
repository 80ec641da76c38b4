# Shared by .ci/sanitize and .ci/avx512_layout (sourced, not run).

# ci_copy_tree ROOT WORK: the working tree (the tests also read examples/,
# README.md, bench/) into WORK, without git data, virtual environments and
# build products.
ci_copy_tree() {
    tar -C "$1" --exclude=./.git --exclude='./.venv*' --exclude=./build --exclude='*.so' \
        --exclude=./lstm_fast/_engine.c --exclude=.hypothesis --exclude=__pycache__ -cf - . |
        tar -C "$2" -xf -
    find "$2" -name __pycache__ -prune -exec rm -rf {} +
}

# ci_build WORK FAILURE_MESSAGE [VAR=value ...]: the engine built in place in
# WORK with those variables set (setup.py reads them); on failure prints the
# log and the message and returns 1. Uses the python on PATH, which needs
# numpy, Cython, setuptools.
ci_build() {
    local work=$1 failure=$2
    shift 2
    python -c "import Cython, setuptools, numpy" 2>/dev/null ||
        python -m pip install --quiet "Cython>=3.0" setuptools "numpy>=2.0"
    (cd "$work" && env "$@" python setup.py build_ext --inplace --force --parallel 2 \
        >"$work/build.log" 2>&1) ||
        { cat "$work/build.log"; echo "$failure" >&2; return 1; }
}
