"""``evaluate-faces`` cost: seconds per photo on the local backend and on the Rekognition stand-in (127.0.0.1).

    .venv/bin/python benchmarks/evaluate_faces.py [--variants 8] [--repeat 2]

The set is the tests' (tests/face_sets.py): the two public-domain people pictured ``--variants`` ways, one
blurred photo, two pictures without a face. Only the enroll-and-search run is timed (not the set, the report or
the database). A store's photos are larger than these 480x360 scenes: the local backend's cost grows with pixels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import boto3

from bot.evaluate_faces import read_photos
from core.config import EnrollmentConfig, RecognitionConfig
from handlers.learning.face_evaluation import evaluate
from simulation.rekognition_server import RekognitionStandIn
from tests.face_sets import build_set
from vision.local_faces import LocalFaceBackend
from vision.rekognition import RekognitionFaceBackend, make_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=8, help="photos per person (default 8, at most 8)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per backend (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        photos = read_photos(build_set(Path(tmp) / "set", variants=args.variants))
        count = sum(len(p) for p in photos.values())
        stand_in = RekognitionStandIn().start()
        session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
        try:
            for name in ("local", "rekognition stand-in"):
                seconds = []
                for n in range(args.repeat):
                    if name == "local":
                        faces: LocalFaceBackend | RekognitionFaceBackend = LocalFaceBackend()
                    else:
                        client = make_client("us-east-1", stand_in.endpoint_url, session=session)
                        faces = RekognitionFaceBackend(client, f"bench-{n}", max_users=500)
                        faces.ensure_collection()
                    started = time.perf_counter()
                    evaluate(photos, faces=faces, enrollment=EnrollmentConfig(), recognition=RecognitionConfig())
                    seconds.append(time.perf_counter() - started)
                median = statistics.median(seconds)
                print(
                    f"{name}: {count} photos in {median:.2f} s (median of {args.repeat}), {median / count:.3f} s a photo"
                )
        finally:
            stand_in.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
