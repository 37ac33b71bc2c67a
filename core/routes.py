"""The one router of chat commands and card actions; handler modules register on it by decorator."""

from __future__ import annotations

from core.router import Router

router = Router()
