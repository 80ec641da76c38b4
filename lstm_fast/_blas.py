"""A scoped limit on the threads of NumPy's OpenBLAS.

NumPy's OpenBLAS keeps its worker threads spinning for a while after each
call; on a machine with few cores they then compete with the engine's own
thread team, and every per-step barrier waits. Measured on 2 cores: the seed
example (LSTM(50), batch 32, 100 epochs) fit in 31 s with OpenBLAS's default
threads and in 6.5 s with one. For small models the BLAS calls are small
anyway, so `Sequential.fit` runs them on one thread (see `limit_threads`).

Found the way threadpoolctl does it: the loaded library's path from
/proc/self/maps, then its own set/get functions. Where either is missing (no
OpenBLAS, another BLAS, not Linux) this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes

_NAMES = [  # (get, set) of the OpenBLAS builds NumPy ships
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
]
_api = None  # (get, set), or False when there is none


def _find():
    global _api
    if _api is not None:
        return _api
    _api = False
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return _api
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _NAMES:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                _api = (get, set_)
                return _api
    return _api


@contextlib.contextmanager
def limit_threads(n):
    """OpenBLAS uses at most n threads inside the block (restored after)."""
    api = _find()
    if not api:
        yield
        return
    get, set_ = api
    before = get()
    if before <= n:
        yield
        return
    set_(n)
    try:
        yield
    finally:
        set_(before)
