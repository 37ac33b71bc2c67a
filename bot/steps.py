"""Which function runs each kind of work item (and, by importing them, the chat handlers on the router). A kind without an entry waits in the queue, durably,
until a process that can run it claims it."""
from __future__ import annotations

from bot.routes import router
from bot.runner import DeadLetter, Step
from handlers import alert_actions, commands  # noqa: F401  (registers the chat commands and card actions)
from handlers import governance  # noqa: F401  (watchlist, forget)
from handlers.checkout import CHECKOUT_SNAPSHOT, job_checkout_snapshot
from handlers.digest import DAILY_DIGEST, job_daily_digest
from handlers.weekly_report import PATTERN_REPORT, job_pattern_report  # (also registers `patterns`)
from handlers.enrollment import ENROLL_FACE, job_enroll_face
from handlers.erasure import ERASE_PERSON, EXPIRE_WATCHLIST, FORGET_TEMPLATES, job_erase_person, job_expire_watchlist, \
    job_forget_templates
from handlers.lookback import LOOKBACK, job_lookback
from handlers.proposals import PROPOSE, job_fraud_report, job_propose_enrollment
from handlers.retention import PURGE, job_purge
from handlers.chat import HANDLE_EVENT, job_handle_event
from handlers.analysis import DECIDE, job_analyze
from handlers.capture import ANALYZE, job_capture_exact, job_capture_live
from handlers.correlation import CAPTURE_EXACT, CAPTURE_LIVE, DECIDE_UNPICTURED, job_triage
from handlers.alerting import NOTIFY_ALERT
from handlers.correlation_failures import CORRELATION_STEPS, settle_dead_step
from handlers.decision import job_decide, job_decide_unpictured
from handlers.delivery import job_deliver
from handlers.entrance import ENTRANCE_VISIT, job_entrance_visit
from handlers.intake import FRAUD_REPORT, TRIAGE
from handlers.notify import job_notify_alert
from storage.outbox import DELIVER

STEPS: dict[str, Step] = {
    TRIAGE: job_triage,
    CAPTURE_LIVE: job_capture_live,
    CAPTURE_EXACT: job_capture_exact,
    ANALYZE: job_analyze,
    DECIDE: job_decide,
    DECIDE_UNPICTURED: job_decide_unpictured,
    DELIVER: job_deliver,
    HANDLE_EVENT: job_handle_event,
    NOTIFY_ALERT: job_notify_alert,
    CHECKOUT_SNAPSHOT: job_checkout_snapshot,
    ENTRANCE_VISIT: job_entrance_visit,
    FRAUD_REPORT: job_fraud_report,
    PROPOSE: job_propose_enrollment,
    ENROLL_FACE: job_enroll_face,
    LOOKBACK: job_lookback,
    FORGET_TEMPLATES: job_forget_templates,
    ERASE_PERSON: job_erase_person,
    EXPIRE_WATCHLIST: job_expire_watchlist,
    PURGE: job_purge,
    DAILY_DIGEST: job_daily_digest,
    PATTERN_REPORT: job_pattern_report,
}

# What a dead-lettered step leaves to settle (bot/runner.py: on_dead).
ON_DEAD: dict[str, DeadLetter] = {kind: settle_dead_step for kind in CORRELATION_STEPS}

# Steps that wait on a camera. They run on their own runner thread: a live picture is taken only
# while the payment is fresh, so it must never queue behind the analysis of earlier pictures.
CAMERA_LANE = frozenset({CAPTURE_LIVE, CAPTURE_EXACT, CHECKOUT_SNAPSHOT, ENTRANCE_VISIT})
