"""The dashboard: totals, opt-outs, blocks and sends per day over the last 30 days, spam
complaints per sequence beside Gmail's lines, automatic enrollments per sequence over the
last day, bounces that refused our own sending, the
sequences that run with exclusions off, paused sender mailboxes, and the exclusions that
match the most people."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.config import is_loopback_url
from optout.services import fresh_rules
from optout.services.enrollments import automatic_view, in_doubt
from optout.services.exclusions import in_sequences
from optout.services.mailboxes import availability
from optout.web.pages import reads
from optout.web.pages.charts import Series, line_chart
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()

DAYS = 30
# Counting what each exclusion matches costs one query apiece: only this many are counted.
MAX_COUNTED_EXCLUSIONS = 25
TOP_EXCLUSIONS = 8
REFUSAL_DAYS = 7
COMPLAINT_SCALE = 0.005  # the complaint bars run to 0.5% at least, past Gmail's 0.3%


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: PageViewer) -> HTMLResponse:
    now = utcnow()
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        totals = reads.totals(db, workspace_id=ws)
        doubtful = in_doubt.count(db, workspace_id=ws)
        days = reads.daily_activity(db, workspace_id=ws, now=now, days=DAYS)
        complaints = reads.complaint_rates(db, workspace_id=ws)
        refusals = reads.sending_refusals(db, workspace_id=ws, now=now, days=REFUSAL_DAYS)
        bypassing = in_sequences.bypassing_sequences(db, workspace_id=ws)
        paused_mailboxes = availability.paused(db, workspace_id=ws, now=now)
        enrolling = automatic_view.per_sequence(db, workspace_id=ws, now=now)
        enabled = [s for s in fresh_rules.all_specs(db, workspace_id=ws) if s.enabled]
        counted = enabled[:MAX_COUNTED_EXCLUSIONS]
        matched = [
            (spec, reads.people_matched(db, workspace_id=ws, exclusion=spec, now=now))
            for spec in counted
        ]
    matched.sort(key=lambda pair: (-pair[1], pair[0].name))
    top = matched[:TOP_EXCLUSIONS]
    peak = max((n for _, n in top), default=0)
    chart = line_chart(
        [d.day.strftime("%b %d") for d in days],
        [
            Series("Sends", "#2454d6", [d.sends for d in days]),
            Series("Blocks", "#d97706", [d.blocks for d in days]),
            Series("Opt-outs", "#b42318", [d.opt_outs for d in days]),
        ],
        title=f"Sends, blocks and opt-outs per day, last {DAYS} days (UTC)",
    )
    return page(
        request,
        "dashboard.html",
        viewer=viewer,
        totals=totals,
        in_doubt=doubtful,
        bypassing=bypassing,
        paused_mailboxes=paused_mailboxes,
        enrolling=enrolling,
        enforced=[s.name for s in enabled if s.exclude_from_sequences],
        chart=chart,
        sums={
            "sends": sum(d.sends for d in days),
            "blocks": sum(d.blocks for d in days),
            "opt_outs": sum(d.opt_outs for d in days),
        },
        days=DAYS,
        complaints=complaints,
        complaint_scale=max([COMPLAINT_SCALE, *(1.2 * r.rate for r in complaints)]),
        gmail_target=reads.GMAIL_TARGET,
        gmail_limit=reads.GMAIL_LIMIT,
        complaint_window=reads.COMPLAINT_WINDOW,
        refusals=refusals,
        refusal_days=REFUSAL_DAYS,
        top=top,
        peak=peak,
        uncounted=len(enabled) - len(counted),
        people_total=totals["people"],
        public_address=site_of(request).settings.base_url,
        address_is_local=is_loopback_url(site_of(request).settings.base_url),
    )
