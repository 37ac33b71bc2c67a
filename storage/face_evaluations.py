"""Runs of ``python -m bot evaluate-faces`` (``face_evaluations``): recorded at the end of a run, the latest one per
backend read by ``check-config``, ``status`` and the stats page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, make_url, select
from sqlalchemy.orm import Session

from storage.models import FaceEvaluation

CHECK_CONNECT_TIMEOUT_S = 5


class FaceEvaluations:
    def __init__(self, session: Session):
        self._session = session

    def record(
        self,
        *,
        finished_at: datetime,
        backend: str,
        match_threshold: float,
        review_threshold: float,
        people: int,
        photos: int,
        genuine_comparisons: int,
        impostor_comparisons: int,
        refused_photos: int,
        figures: dict[str, Any],
    ) -> FaceEvaluation:
        row = FaceEvaluation(
            finished_at=finished_at,
            backend=backend,
            match_threshold=match_threshold,
            review_threshold=review_threshold,
            people=people,
            photos=photos,
            genuine_comparisons=genuine_comparisons,
            impostor_comparisons=impostor_comparisons,
            refused_photos=refused_photos,
            figures=figures,
        )
        self._session.add(row)
        return row

    def latest(self, backend: str) -> FaceEvaluation | None:
        query = (
            select(FaceEvaluation)
            .where(FaceEvaluation.backend == backend)
            .order_by(FaceEvaluation.finished_at.desc(), FaceEvaluation.id.desc())
            .limit(1)
        )
        return self._session.scalar(query)


def latest_without_side_effects(database_url: str, backend: str) -> FaceEvaluation | None:
    """The latest evaluation for ``check-config``, which must not create a SQLite file nor wait long for a server:
    None when there is no database or no table yet (nothing was ever evaluated there). Other failures raise."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            return None
        engine = create_engine(url)
    else:
        engine = create_engine(url, connect_args={"connect_timeout": CHECK_CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(FaceEvaluation.__tablename__):
                return None
            with Session(bind=connection) as session:
                row = FaceEvaluations(session).latest(backend)
                if row is not None:
                    session.expunge(row)
                return row
    finally:
        engine.dispose()
