"""Build the outside-service adapters from the configuration: camera, recognition, product counting, evidence.

Called by the composition root only. Heavy parts load lazily (dlib's models on first detect).
"""

from __future__ import annotations

from typing import Any

from core.clock import Clock
from core.config import Config
from core.messenger import Messenger
from storage import watchlist
from storage.db import Database
from storage.evidence import EvidenceStore, FileEvidenceStore
from storage.rate_budget import RateBudget
from vision.types import Camera, FaceBackend, ProductCounter

# How long a capture step may wait for a camera API token before it gives the step back to the queue.
BUDGET_MAX_WAIT_S = 5.0


def make_camera(config: Config, db: Database, clock: Clock) -> Camera | None:
    key = config.env.meraki_dashboard_api_key
    if key is None:
        return None
    from vision.meraki import MerakiCamera

    camera = config.business.camera
    budget = RateBudget(db, rate_per_s=camera.rate_limit_per_org, burst=camera.burst, clock=clock)
    return MerakiCamera(
        base_url=str(config.env.meraki_base_url),
        api_key=key.get_secret_value(),
        budget=lambda org: budget.acquire(org, max_wait_s=BUDGET_MAX_WAIT_S),
        on_rate_limited=budget.block_for,
        timeout_s=camera.timeout_s,
        poll_initial_s=camera.poll_initial_s,
        poll_total_s=camera.poll_total_s,
        picture_hosts=config.env.meraki_picture_hosts,
    )


def make_face_backend(config: Config, db: Database) -> FaceBackend:
    if config.env.recognition_backend == "rekognition":
        from vision.rekognition import RekognitionFaceBackend

        return RekognitionFaceBackend(rekognition_client(config), config.env.rekognition_collection_id)
    from vision.local_faces import LocalFaceBackend

    local = LocalFaceBackend(
        load_gallery=lambda: watchlist.gallery_rows(db), gallery_version=lambda: watchlist.gallery_version(db)
    )
    processes = config.business.runner.workers.analysis
    if processes <= 1:
        return local
    from vision.face_pool import PooledLocalFaceBackend

    # dlib holds the GIL: several analysis workers need as many processes to use as many cores.
    return PooledLocalFaceBackend(local, processes=processes)


def make_product_counter(config: Config) -> ProductCounter | None:
    """Counts only what can honestly be counted; every other label is reported "not checked"."""
    if not config.business.catalog:
        return None
    if config.env.recognition_backend == "rekognition":
        from vision.rekognition_labels import RekognitionProductCounter

        return RekognitionProductCounter(rekognition_client(config))
    from vision.local_products import LocalProductCounter, load_references

    references = load_references(config.business.catalog, config.config_dir)
    return LocalProductCounter(references) if references else None


def rekognition_client(config: Config) -> Any:
    from vision.rekognition import DeadlineClient, make_client

    endpoint = config.env.aws_endpoint_url
    client = make_client(config.env.aws_region, str(endpoint) if endpoint else None)
    return DeadlineClient(client, deadline_s=config.business.recognition.call_deadline_s)


def make_evidence_store(config: Config) -> EvidenceStore:
    """Files under DATA_DIR, or objects in the bucket of EVIDENCE_URL (any process can read what another stored)."""
    location = config.env.evidence_location()
    if location is None:
        return FileEvidenceStore(config.env.data_dir)
    from storage.evidence_s3 import S3EvidenceStore, make_client

    bucket, prefix = location
    return S3EvidenceStore(make_client(config.env.aws_region, config.env.s3_endpoint()), bucket, prefix)


def make_messenger(config: Config) -> Messenger | None:
    """The Webex REST client when a bot token is set; None keeps Webex off (console only)."""
    token = config.env.webex_access_token
    if token is None:
        return None
    from bot.webex_client import WebexClient

    return WebexClient(token.get_secret_value(), base_url=str(config.env.webex_base_url))
