"""Which function runs each kind of work item (and, by importing them, the chat handlers on the router). A kind without an entry waits in the queue, durably,
until a process that can run it claims it."""
from __future__ import annotations

from bot.routes import router
from bot.runner import Step
from handlers import alert_actions, commands  # noqa: F401  (registers the chat commands and card actions)
from handlers.chat import HANDLE_EVENT, job_handle_event
from handlers.analysis import DECIDE, job_analyze
from handlers.capture import ANALYZE, job_capture_exact, job_capture_live
from handlers.correlation import CAPTURE_EXACT, CAPTURE_LIVE, job_triage
from handlers.decision import NOTIFY_ALERT, job_decide
from handlers.delivery import job_deliver
from handlers.intake import TRIAGE
from handlers.notify import job_notify_alert
from storage.outbox import DELIVER

STEPS: dict[str, Step] = {
    TRIAGE: job_triage,
    CAPTURE_LIVE: job_capture_live,
    CAPTURE_EXACT: job_capture_exact,
    ANALYZE: job_analyze,
    DECIDE: job_decide,
    DELIVER: job_deliver,
    HANDLE_EVENT: job_handle_event,
    NOTIFY_ALERT: job_notify_alert,
}
