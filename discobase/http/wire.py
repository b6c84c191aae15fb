"""The transport contract's former name (http layer): use :mod:`discobase.http.transport`.

Kept so that ``from discobase.http.wire import ...`` goes on working; nothing in discobase
imports it.
"""

from __future__ import annotations

from discobase.http.transport import MockTransport, RawResponse, Transport, TransportFailure

__all__ = ["MockTransport", "RawResponse", "Transport", "TransportFailure"]
