"""Adaptive Card builders: pure functions from domain objects to card dicts (the Webex bot issue fills this)."""
