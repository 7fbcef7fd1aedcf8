"""Shared test configuration: off-screen figures (in this process only) and a seeded rng fixture."""

import matplotlib

# Off-screen figures in *this* process only. Setting MPLBACKEND in os.environ instead would leak
# into the kernels nbval starts with --nbval-current-env: their plt.show() then draws nothing, and
# every stored figure output fails to compare (``make test`` runs tests/ and the notebooks together).
matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
