"""Keeping big nets linear.

The front end and the analysis build many small objects and no reference cycles.  Python's cyclic
collector would walk the growing heap again and again while they are built (the per-layer time of a
10,000-layer net grew 1.5x over a 1,000-layer one because of it), so it is paused around those stages;
anything cyclic left behind is collected when it resumes.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
