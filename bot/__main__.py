"""``python -m bot serve|web|worker|demo|db upgrade|check-config|evaluate-faces`` (docs/interfaces.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import logs
from core.config import Config, ConfigError, load_config_from_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="fraud-loss-prevention")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="HTTP API, Webex transport and background runner in one process")
    commands.add_parser("web", help="HTTP only, under gunicorn (Procfile)")
    commands.add_parser("worker", help="background steps only (Procfile)")
    demo = commands.add_parser("demo", help="the whole product offline on embedded defaults")
    demo.add_argument(
        "--auto", action="store_true", help="play the store manager through the console, print a summary and exit"
    )
    demo.add_argument(
        "--webex-room",
        metavar="ROOM_ID",
        help="with WEBEX_ACCESS_TOKEN: post the demo store's alerts to this Webex space too",
    )
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    work = commands.add_parser("work", help="dead-lettered steps: list them, retry or drop them by id")
    work.add_argument("action", choices=["list", "retry", "drop"])
    work.add_argument("ids", nargs="*", type=int, metavar="ID", help="ids from `work list`")
    check = commands.add_parser("check-config", help="validate the configuration and say what is wrong")
    check.add_argument(
        "--for",
        dest="for_mode",
        choices=["serve", "web", "worker", "demo"],
        default="serve",
        help="check what this command needs from the environment (default: serve)",
    )
    evaluate = commands.add_parser(
        "evaluate-faces", help="measure face matching on your own photos: one folder per person in DIR"
    )
    evaluate.add_argument("directory", metavar="DIR", type=Path, help="one folder of photos per person")
    evaluate.add_argument(
        "--backend", choices=["local", "rekognition"], help="default: RECOGNITION_BACKEND (never the watchlist)"
    )
    evaluate.add_argument(
        "--out", metavar="REPORT_DIR", type=Path, default=Path("face-evaluation"), help="default: ./face-evaluation"
    )
    args = parser.parse_args(argv)

    mode = {"db": "db", "work": "db", "evaluate-faces": "db", "check-config": "check"}.get(args.command, args.command)
    fresh = False
    if mode == "demo":
        from bot import demo as demo_store

        fresh = demo_store.environment_defaults()
    try:
        config = load_config_from_environment(args.for_mode if mode == "check" else mode)
    except ConfigError as exc:
        print("The configuration is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if mode == "check":
        business = config.business
        registers = sum(len(s.registers) for s in business.stores)
        print(
            f"configuration OK: {len(business.stores)} stores, {registers} registers, "
            f"{len(business.people)} people, {len(business.rules)} rules"
        )
        from bot.adapters import make_evidence_store

        # Reachability is reported, not judged: the store may be down now and up at start.
        print(f"evidence ({config.env.evidence_url or 'files under DATA_DIR'}): {make_evidence_store(config).probe()}")
        print(_evaluation_line(config))
        return 0
    logs.configure(config.env.log_level, config.env.log_format, config.env.secrets())

    from bot import processes
    from storage import migrate

    if args.command == "evaluate-faces":
        from bot import evaluate_faces

        return evaluate_faces.run(config, args.directory, backend=args.backend, out=args.out)
    if args.command == "work":
        from bot import work_admin

        return work_admin.run(config.env.database_url, args.action, args.ids)
    if mode == "db":
        migrate.upgrade(config.env.database_url)
        print("database is at the latest migration")
        return 0
    if mode == "demo":
        return demo_store.run(config, auto=args.auto, webex_room=args.webex_room, fresh=fresh)
    {"serve": processes.serve, "web": processes.web, "worker": processes.worker}[mode](config)
    return 0


def _evaluation_line(config: Config) -> str:
    """Whether face matching was measured under the thresholds configured now (reported, not judged: exit 0)."""
    from handlers.learning.evaluation_rates import notice
    from storage.face_evaluations import latest_without_side_effects

    backend = config.env.recognition_backend
    try:
        latest = latest_without_side_effects(config.env.database_url, backend)
    except Exception as exc:  # any database failure is reported as such; check-config goes on
        return f"face evaluation: unknown, the database cannot be read ({type(exc).__name__})"
    attention, line = notice(latest, backend=backend, recognition=config.business.recognition)
    return f"face evaluation: {'WARNING: ' if attention else ''}{line}"


if __name__ == "__main__":
    sys.exit(main())
