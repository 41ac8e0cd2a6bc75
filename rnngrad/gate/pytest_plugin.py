"""pytest plugin (entry point ``pytest11: rnngrad``): a fixture and a marker.

    @pytest.mark.rnngrad(explode_above=1e3, lags="1..50")
    def test_my_rnn(rnn_healthy):
        rnn_healthy(model)          # AssertionError (reading like the table) when a check fails

The ``rnn_healthy`` fixture is :func:`rnngrad.testing.assert_healthy` with the marker's
settings as defaults (keyword arguments at the call win).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``rnngrad`` marker."""
    config.addinivalue_line("markers", "rnngrad(**thresholds): default thresholds for the "
                                       "rnn_healthy fixture (explode_above=..., ...)")


@pytest.fixture
def rnn_healthy(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """:func:`rnngrad.testing.assert_healthy` with the ``rnngrad`` marker's settings as defaults."""
    from rnngrad.testing import assert_healthy

    marker = request.node.get_closest_marker("rnngrad")
    defaults = dict(marker.kwargs) if marker else {}

    def check_model(model: Any, **settings: Any):
        return assert_healthy(model, **{**defaults, **settings})

    return check_model
