"""The demo's store manager under ``--auto``: a client of the review console, pressing the same buttons a person
would (the Submit data of the rendered cards, with the inputs filled in), through the same HTTP endpoint.

It never reaches into the service: it signs in with its console token, reads the timeline, and posts
presses with the page's CSRF token, exactly as the browser does.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import requests


class ConsoleError(Exception):
    pass


class ConsoleManager:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30):
        self.base_url, self.token, self.timeout_s = base_url.rstrip("/"), token, timeout_s
        self.session = requests.Session()
        self.csrf = ""

    def sign_in(self) -> ConsoleManager:
        page = self._get("/console/signin").text
        form_token = _match(r'name="csrf" value="([^"]+)"', page)
        response = self.session.post(
            f"{self.base_url}/console/signin",
            data={"token": self.token, "csrf": form_token},
            timeout=self.timeout_s,
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise ConsoleError(f"sign-in refused (HTTP {response.status_code})")
        self.csrf = _match(r'name="csrf-token" content="([^"]+)"', self._get("/console").text)
        return self

    def timeline(self) -> list[dict[str, Any]]:
        return self._get("/console/api/timeline").json()["items"]

    def press(self, data: dict[str, Any], title: str) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"event_id": f"console:{secrets.token_hex(16)}", "data": data, "title": title}
        response = self.session.post(
            f"{self.base_url}/console/api/actions",
            json=body,
            timeout=self.timeout_s,
            headers={"X-CSRF-Token": self.csrf},
        )
        if response.status_code != 200:
            raise ConsoleError(
                f"press {data.get('action')} refused (HTTP {response.status_code}): {response.text[:200]}"
            )
        return response.json()["replies"]

    def confirm(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        action = _submit(item["card"], "confirm")
        return self.press(action["data"], action["title"])

    def dismiss(self, item: dict[str, Any], reason: str, note: str = "") -> list[dict[str, Any]]:
        action = _submit(item["card"], "dismiss")  # inside the Dismiss form (an Action.ShowCard)
        return self.press({**action["data"], "reason": reason, "note": note}, action["title"])

    def enroll(self, item: dict[str, Any], reason: str, expiry_days: int) -> list[dict[str, Any]]:
        """Enroll a face → the proposal card in the thread → pick its first offered face, give reason and expiry → Enroll."""
        proposal = _submit(item["card"], "enroll_proposal")
        replies = self.press(proposal["data"], proposal["title"])
        card = next((r["card"] for r in replies if r.get("card") and _find(r["card"], "enroll")), None)
        if card is None:
            raise ConsoleError(
                "no enrollment proposal with an Enroll button came back: "
                + " / ".join(r.get("markdown", "") for r in replies)
            )
        button = _submit(card, "enroll")
        face = next(i for i in _elements(card) if i.get("type") == "Input.ChoiceSet" and i.get("id") == "face")
        inputs = {
            "face": face.get("value") or face["choices"][0]["value"],
            "reason": reason,
            "expiry_days": str(expiry_days),
        }
        return replies + self.press({**button["data"], **inputs}, button["title"])

    def _get(self, path: str) -> requests.Response:
        response = self.session.get(self.base_url + path, timeout=self.timeout_s)
        if response.status_code != 200:
            raise ConsoleError(f"GET {path}: HTTP {response.status_code}")
        return response


def has_action(card: dict[str, Any], action: str) -> bool:
    return _find(card, action) is not None


def _submit(card: dict[str, Any], action: str) -> dict[str, Any]:
    found = _find(card, action)
    if found is None:
        raise ConsoleError(f"the card has no {action!r} button")
    return found


def _find(card: dict[str, Any], action: str) -> dict[str, Any] | None:
    return next(
        (
            a
            for a in _actions(card)
            if a.get("type") == "Action.Submit"
            and isinstance(a.get("data"), dict)
            and a["data"].get("action") == action
        ),
        None,
    )


def _actions(card: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every action of the card, including those of Action.ShowCard sub-cards."""
    for action in card.get("actions", []):
        yield action
        if action.get("type") == "Action.ShowCard":
            yield from _actions(action.get("card", {}))


def _elements(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            yield from _elements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _elements(value)


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise ConsoleError("the console page is not what was expected")
    return found.group(1)
