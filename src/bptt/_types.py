"""Type aliases shared across modules."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
"""A float array (float64 by default, float32 opt-in; complex128 inside gradcheck's probes)."""

IndexArray = NDArray[np.intp]
