"""Which function runs each kind of work item. A kind without an entry waits in the queue, durably,
until a process that can run it claims it."""
from __future__ import annotations

from handlers.correlation import job_triage
from handlers.intake import TRIAGE
from bot.runner import Step

STEPS: dict[str, Step] = {
    TRIAGE: job_triage,
}
