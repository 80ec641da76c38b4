"""Fixtures shared by the engine's test files."""

import pytest

from lstm_fast import ops


@pytest.fixture(params=ops.supported_isas())
def isa(request):
    """Runs the test once on every ISA path this CPU supports, restoring the path after."""
    before = ops.get_isa()
    ops.set_isa(request.param)
    yield request.param
    ops.set_isa(before)
