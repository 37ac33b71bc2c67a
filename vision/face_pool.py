"""The local backend's detection in worker processes: dlib holds the GIL, so threads analyse one picture at a time.

Only ``detect`` (finding faces and computing their descriptors: the CPU time) runs in the pool; searching the
watchlist, enrolling and forgetting stay in this process, with the gallery. Each worker loads the models once;
workers are spawned, not forked, so no database connection or thread crosses into them. A worker that dies takes
its picture with it: the analysis step sees the error and retries as any failed step does.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from vision import image_prep
from vision.local_faces import LocalFaceBackend
from vision.types import DetectedFace, EnrolledFace, FaceMatch, RecognitionError

log = logging.getLogger(__name__)

_worker_backend: LocalFaceBackend | None = None


def _start_worker(max_pixels: int = image_prep.DEFAULT_MAX_PIXELS) -> None:
    global _worker_backend
    image_prep.limit_pixels(max_pixels)  # a spawned worker starts from the defaults, not from our configuration
    _worker_backend = LocalFaceBackend()  # no gallery: a worker only detects


def _detect_in_worker(image: bytes) -> list[DetectedFace]:
    assert _worker_backend is not None, "the pool's initializer makes the backend"
    return _worker_backend.detect(image)


class PooledLocalFaceBackend:
    """``FaceBackend`` of the local models with detection spread over ``processes`` worker processes."""

    name = "local"

    def __init__(self, backend: LocalFaceBackend, *, processes: int):
        self._backend, self._processes = backend, processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def prepare(self) -> str:
        self._executor()  # start the workers now: their model loading is not a checkout's wait
        return self._backend.prepare()

    def detect(self, image: bytes) -> list[DetectedFace]:
        pool = self._executor()
        try:
            return pool.submit(_detect_in_worker, image).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # another thread may have started a new one already
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            log.error("a face detection worker process died; the pool is restarted")
            raise RecognitionError("the face detection worker stopped; trying again", retry=True) from None

    def search(
        self, face: DetectedFace, *, person_ids: Collection[str] | None, min_similarity: float
    ) -> list[FaceMatch]:
        return self._backend.search(face, person_ids=person_ids, min_similarity=min_similarity)

    def enroll(self, person_id: str, face: DetectedFace) -> EnrolledFace:
        return self._backend.enroll(person_id, face)

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        self._backend.forget(person_id, backend_face_ids)

    def gallery_size(self) -> int:
        return self._backend.gallery_size()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self._processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(image_prep.max_pixels(),),
                )
            return self._pool
