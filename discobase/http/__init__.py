"""discobase's Discord REST client (http layer: below storage, beside the gateway).

``HTTPClient`` sends requests through ``RateLimiter``, which learns Discord's buckets and keeps
under the global limit; ``routes`` names every endpoint; errors live in ``errors``. Importing
this package does not import aiohttp: the transport is loaded when a client opens.
"""

from __future__ import annotations

from discobase.http import errors, routes
from discobase.http.client import DEFAULT_API_URL, HTTPClient, HTTPStats
from discobase.http.clock import Clock, LoopClock, ManualClock
from discobase.http.files import File
from discobase.http.ratelimit import BucketView, LimiterStats, Permit, RateLimiter
from discobase.http.routes import CompiledRoute, Route
from discobase.http.transport import MockTransport, RawResponse, Transport, TransportFailure

__all__ = [
    "DEFAULT_API_URL",
    "BucketView",
    "Clock",
    "CompiledRoute",
    "File",
    "HTTPClient",
    "HTTPStats",
    "LimiterStats",
    "LoopClock",
    "ManualClock",
    "MockTransport",
    "Permit",
    "RateLimiter",
    "RawResponse",
    "Route",
    "Transport",
    "TransportFailure",
    "errors",
    "routes",
]
