"""The emulator's REST API (``/api/v10`` and ``/api/v9``): routing, limits and handlers.

Layer: the emulator. Imports nothing from the client packages.
"""

from __future__ import annotations

from .dispatch import RestApi

__all__ = ["RestApi"]
