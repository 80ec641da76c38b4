"""Docstrings of the public API: every public name has one, the user-facing
names have Keras's sections (Args when they take arguments, Returns when they
return a value, an Example), and the ``>>>`` examples run and print what they
show (doctest).

"Public" is each module's ``__all__`` (and the public methods of the classes in
it; a method that overrides a documented base-class method inherits its
docstring, as ``help()`` shows it).
"""

import ast
import doctest
import importlib
import inspect
import pydoc
import re
import textwrap

import numpy as np
import pytest

import lstm_fast
from lstm_fast import utils

MODULES = [
    "lstm_fast",
    "lstm_fast.activations",
    "lstm_fast.callbacks",
    "lstm_fast.demo",
    "lstm_fast.initializers",
    "lstm_fast.interop",
    "lstm_fast.layers",
    "lstm_fast.losses",
    "lstm_fast.metrics",
    "lstm_fast.models",
    "lstm_fast.ops",
    "lstm_fast.optimizers",
    "lstm_fast.reference",
    "lstm_fast.regularizers",
    "lstm_fast.saving",
    "lstm_fast.streaming",
    "lstm_fast.utils",
]

# Modules whose every public class and function has the Keras sections: an
# "Example:", "Args:" when it takes arguments, and "Returns:" when it is a
# function that returns a value. Extend as modules get there.
KERAS_STYLE_MODULES = [
    "lstm_fast",
    "lstm_fast.activations",
    "lstm_fast.callbacks",
    "lstm_fast.demo",
    "lstm_fast.initializers",
    "lstm_fast.interop",
    "lstm_fast.layers",
    "lstm_fast.losses",
    "lstm_fast.metrics",
    "lstm_fast.models",
    "lstm_fast.optimizers",
    "lstm_fast.reference",
    "lstm_fast.regularizers",
    "lstm_fast.saving",
    "lstm_fast.streaming",
    "lstm_fast.utils",
]


def _public_objects(module_name):
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj):
            yield f"{module_name}.{name}", obj


def _all_public(modules, methods):
    seen, found = set(), []
    for module_name in modules:
        found.append((module_name, importlib.import_module(module_name)))
        for qualname, obj in _public_objects(module_name):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if not methods:
                found.append((qualname, obj))
            elif inspect.isclass(obj) and obj.__module__.startswith("lstm_fast"):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not callable(member):
                        continue
                    found.append((f"{qualname}.{attr}", getattr(obj, attr)))
    return found


PUBLIC = _all_public(MODULES, methods=False)
# Modules whose classes document every public method too. Extend as modules get there.
METHOD_DOC_MODULES = [
    "lstm_fast",
    "lstm_fast.activations",
    "lstm_fast.callbacks",
    "lstm_fast.demo",
    "lstm_fast.initializers",
    "lstm_fast.interop",
    "lstm_fast.layers",
    "lstm_fast.losses",
    "lstm_fast.metrics",
    "lstm_fast.models",
    "lstm_fast.ops",
    "lstm_fast.optimizers",
    "lstm_fast.reference",
    "lstm_fast.regularizers",
    "lstm_fast.saving",
    "lstm_fast.utils",
]
PUBLIC_METHODS = _all_public(METHOD_DOC_MODULES, methods=True)


def _takes_arguments(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True
    return any(p not in ("self", "cls", "args", "kwargs") for p in params)


def _returns_a_value(obj):
    """Whether a function's own body has a ``return <value>`` (not a bare return)."""
    if not inspect.isfunction(obj):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return False
    function = tree.body[0]
    todo = list(function.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue  # a nested function's return is not this function's
        todo.extend(ast.iter_child_nodes(node))
    return False


def _keras_style_names():
    names = []
    for module_name in KERAS_STYLE_MODULES:
        for qualname, obj in _public_objects(module_name):
            if not inspect.ismodule(obj):
                names.append(qualname)
    return sorted(set(names))


def _resolve(qualname):
    module_name, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


@pytest.mark.parametrize("qualname, obj", PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_name_has_a_docstring(qualname, obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc.strip()) >= 10, f"{qualname} has no docstring"


@pytest.mark.parametrize("qualname, method", PUBLIC_METHODS, ids=[q for q, _ in PUBLIC_METHODS])
def test_public_method_has_a_docstring(qualname, method):
    doc = inspect.getdoc(method)
    assert doc and len(doc.strip()) >= 10, f"{qualname} has no docstring"


@pytest.mark.parametrize("qualname", _keras_style_names())
def test_keras_style_sections(qualname):
    obj = _resolve(qualname)
    doc = inspect.getdoc(obj) or ""
    assert re.search(r"^Examples?:", doc, re.M), f"{qualname}: no 'Example:' section"
    if _takes_arguments(obj):
        assert re.search(r"^Args:", doc, re.M), f"{qualname}: takes arguments, no 'Args:'"
    if _returns_a_value(obj):
        assert re.search(r"^Returns?:", doc, re.M), f"{qualname}: returns a value, no 'Returns:'"
    # an example shows code: a doctest prompt or an indented line
    example = re.split(r"^Examples?:", doc, flags=re.M)[1]
    assert ">>>" in example or re.search(r"^ {4}\S", example, re.M), qualname


def test_help_of_the_lstm_layer_reads_well():
    text = pydoc.render_doc(lstm_fast.LSTM, renderer=pydoc.plaintext)
    assert "Long Short-Term Memory" in text
    for section in ("Args:", "units:", "return_sequences:", "Example:", ">>>"):
        assert section in text, section
    assert "LSTM(units, activation='tanh'" in text.replace("\n", " ") or "units," in text


def test_every_module_has_a_docstring():
    for module_name in MODULES:
        doc = inspect.getdoc(importlib.import_module(module_name))
        assert doc, module_name


# Modules whose ``>>>`` examples are run as doctests, so they cannot rot. The
# examples may use ``np``, ``lstm_fast`` and the names of ``lstm_fast.__all__``
# (``Sequential``, ``LSTM``, ``Dense``, ...) without importing them, the way
# Keras's examples assume ``keras`` and ``np``. Not here yet: lstm_fast.models
# (its examples are fragments using a model and data they do not define). doctest
# only collects what a module defines itself, hence the layers' submodules.
DOCTEST_MODULES = [
    "lstm_fast",
    "lstm_fast.activations",
    "lstm_fast.callbacks",
    "lstm_fast.demo",
    "lstm_fast.initializers",
    "lstm_fast.interop",
    "lstm_fast.layers",
    "lstm_fast.layers.base",
    "lstm_fast.layers.bidirectional",
    "lstm_fast.layers.dense",
    "lstm_fast.layers.dropout",
    "lstm_fast.layers.embedding",
    "lstm_fast.layers.input",
    "lstm_fast.layers.lstm",
    "lstm_fast.layers.masking",
    "lstm_fast.losses",
    "lstm_fast.metrics",
    "lstm_fast.optimizers",
    "lstm_fast.reference",
    "lstm_fast.regularizers",
    "lstm_fast.saving",
    "lstm_fast.streaming",
    "lstm_fast.utils",
]
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.fixture
def isolated_state(tmp_path, monkeypatch):
    """Run in an empty directory (examples may save files) and restore the global
    state examples may change: lstm_fast's generator and float type, NumPy's and
    Python's global generators."""
    import random

    monkeypatch.chdir(tmp_path)
    rng, rng_state = utils._rng, utils._rng.bit_generator.state
    floatx = utils.floatx()
    np_state, py_state = np.random.get_state(), random.getstate()
    yield
    utils._rng = rng
    rng.bit_generator.state = rng_state
    utils.set_floatx(floatx)
    np.random.set_state(np_state)
    random.setstate(py_state)


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_docstring_examples_run(module_name, isolated_state):
    module = importlib.import_module(module_name)
    extraglobs = {"np": np, "lstm_fast": lstm_fast}
    extraglobs.update({name: getattr(lstm_fast, name) for name in lstm_fast.__all__})
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report = []
    for test in finder.find(module, module_name, extraglobs=extraglobs):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0, f"{module_name} has no >>> examples"
    assert results.failed == 0, "".join(report)
