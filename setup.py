"""Builds the compiled engine: csrc/*.c (the C kernels) + lstm_fast/_engine.pyx.

The ISA-specific kernels (csrc/lstm_isa_avx2.c, csrc/lstm_isa_avx512.c) set
their own instruction set with `#pragma GCC target`, and the engine picks one
at run time, so the build is generic x86-64: never -march=native.

LSTM_FAST_SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer
(for CI; run Python with LD_PRELOAD of libasan).

LSTM_FAST_GENERIC_AS=avx512 builds the generic kernels with the AVX-512
kernels' vector width and gates per pass (a test build, for CI: on a machine
without AVX-512 it runs their packed layout and tiles in portable code). Build
with --force when switching either variable: setuptools compares only the
sources' times with the built module's.
"""

import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

C_SOURCES = [
    "csrc/lstm.c",
    "csrc/threadpool.c",
    "csrc/lstm_isa_generic.c",
    "csrc/lstm_isa_avx2.c",
    "csrc/lstm_isa_avx512.c",
]

compile_args = ["-O3", "-std=c11", "-Wall", "-Wno-psabi", "-Wno-unused-function",
                "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]
link_args = ["-pthread"]
if sys.platform.startswith("linux"):
    compile_args.append("-pthread")
if os.environ.get("LSTM_FAST_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-fno-omit-frame-pointer", "-g"]
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O1"] + san
    link_args += san

define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("_GNU_SOURCE", None)]
generic_as = os.environ.get("LSTM_FAST_GENERIC_AS", "")
if generic_as and os.environ.get("LSTM_FAST_SANITIZE"):
    sys.exit("LSTM_FAST_GENERIC_AS and LSTM_FAST_SANITIZE: expected one of them, received both")
if generic_as == "avx512":
    define_macros += [("LF_GENERIC_VBYTES", "64"), ("LF_GENERIC_GP", "4"),
                      ("LF_GENERIC_GEMM_MR", "6"), ("LF_GENERIC_GEMM_NV", "4"),
                      ("LF_GENERIC_NB_BWD", "4")]
    # -O2 for every file: at -O3 the generic file alone took 118 s to compile
    # with 64-byte vectors (40 s at -O2)
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O2"]
elif generic_as:
    sys.exit(f"LSTM_FAST_GENERIC_AS: expected 'avx512' or unset, received {generic_as!r}")

extensions = [
    Extension(
        "lstm_fast._engine",
        sources=["lstm_fast/_engine.pyx"] + C_SOURCES,
        include_dirs=["csrc", np.get_include()],
        define_macros=define_macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        depends=["csrc/lstm.h", "csrc/lstm_cython.h", "csrc/lstm_internal.h", "csrc/threadpool.h",
                 "csrc/lstm_kernels.inc.c", "csrc/gemm.inc.c"],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
