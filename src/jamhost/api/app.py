"""The FastAPI application: routes, error table, middleware. Thin: HTTP in, use case, JSON out."""

from __future__ import annotations

from fastapi import FastAPI

from jamhost import __version__
from jamhost.api import errors, openapi
from jamhost.api.middleware import RequestLog
from jamhost.api.rate_gate import RateGate
from jamhost.api.routes import accounts, audit, packages, preimages, services, system
from jamhost.app.pipeline import process_next
from jamhost.app.runtime import Runtime

DESCRIPTION = """Multi-tenant runtime for JAM services (Gray Paper 0.7.2).

Tenants own services (PVM code, state, balance) and submit work packages, which are refined
into work reports, attested and accumulated into the service's state. Every request but
`/healthz`, `/readyz` and `/metrics` takes `Authorization: Bearer <token>`. Every error is
`{"error": message, "code": code}` with a code of SPEC §3's table; another tenant's objects
are answered exactly like missing ones."""


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="jamhost", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None)  # /docs: served offline by api.openapi
    app.state.runtime = rt
    rt.extras.setdefault("processor", lambda: process_next(rt, "api"))
    errors.install(app)
    openapi.install(app)
    for module in (system, accounts, services, preimages, packages, audit):
        app.include_router(module.router)
    app.add_middleware(RateGate)  # innermost of ours: logged and metered like any request
    app.add_middleware(RequestLog)
    app.add_middleware(errors.CatchAll)  # added last: outermost of ours
    return app
