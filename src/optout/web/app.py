"""The FastAPI application factory: one app, built from settings, mounting every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db.engine import create_engine
from optout.jobs.runner import JobThread
from optout.mail.tokens import UnsubscribeTokens
from optout.web import api, crm_webhooks, errors, pages, unsubscribe
from optout.web.body_limits import BodyLimits
from optout.web.clients import TrustedProxies
from optout.web.conflicts import RetryConflicts
from optout.web.headers import SecurityHeaders
from optout.web.site import Site, page_templates
from optout.web.unsubscribe_spool import SpoolThread


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The web app over `engine` (by default one for `settings.database_url`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Background jobs run while the app serves; on shutdown the running one stops
        after its current step and goes back in the queue."""
        runner = JobThread(app.state.site.engine) if settings.web_runs_jobs else None
        if runner is not None:
            runner.start()
        spool = SpoolThread(app.state.site)  # writes unsubscribe clicks kept on a lock
        spool.start()
        try:
            yield
        finally:
            spool.close()
            if runner is not None:
                runner.close()

    app = FastAPI(title="optout", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.site = Site(
        settings=settings,
        engine=engine if engine is not None else create_engine(settings.database_url),
        tokens=UnsubscribeTokens(settings.signing_keys()),
        templates=page_templates(),
    )
    errors.install(app)
    api.install(app)
    app.include_router(unsubscribe.router)
    app.include_router(crm_webhooks.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    app.add_middleware(RetryConflicts)  # inside BodyLimits: it replays a body already capped
    app.add_middleware(BodyLimits)  # inside SecurityHeaders: its 413 gets the headers too
    app.add_middleware(SecurityHeaders, https_only=settings.https_only)
    app.add_middleware(TrustedProxies, proxies=settings.trusted_proxies)  # first: who and how

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
