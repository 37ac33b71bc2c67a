"""The help card: the commands this person may use, each with its usage and what it does.

Also the answer to an unknown command ("unknown commands get help, not silence").
"""

from __future__ import annotations

from typing import Any

from cards import elements as el
from cards.views import CommandHelp, HelpView


def help_card(view: HelpView) -> dict[str, Any]:
    """Usage in monospace, description below; the person's role at the end so a missing command makes sense."""
    body = [el.text("What I can do", size="medium", weight="bolder")]
    if view.unknown_command:
        body.append(
            el.text(f'I don\'t know the command "{view.unknown_command}". Here is what you can ask:', color="warning")
        )
    body += [_command(command) for command in view.commands]
    if not view.commands:
        body.append(el.text("You have no commands here. Ask your manager to add you to this store."))
    if view.role:
        body.append(
            el.text(f"Your role: {view.role}. Buttons on cards check your role too.", subtle=True, separator=True)
        )
    return el.card(body, fallback_text="Commands: " + ", ".join(command.command for command in view.commands))


def _command(command: CommandHelp) -> dict[str, Any]:
    return el.container(
        [
            el.text(command.usage, weight="bolder", monospace=True),
            el.text(command.description, spacing="none"),
        ],
        spacing="small",
    )
