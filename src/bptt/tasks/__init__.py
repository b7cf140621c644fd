"""Tasks bptt ships: data, training recipes and evaluation for one problem each."""

from . import addition, charlm

__all__ = ["addition", "charlm"]
