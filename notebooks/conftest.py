"""The notebooks run top to bottom under nbmake and sample with real MCMC: they belong to the slow set
(``make test`` runs them; ``PYTEST_ARGS='-m "not slow"'`` skips them for a quick loop)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if item.fspath.ext == ".ipynb":
            item.add_marker(pytest.mark.slow)
