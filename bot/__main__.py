"""``python -m bot serve|web|worker|demo|db upgrade|check-config`` (CONTRACT.md)."""
from __future__ import annotations

import argparse
import os
import secrets
import sys

from bot import logs
from bot.config import ConfigError, load_config_from_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="fraud-loss-prevention")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="HTTP API, Webex transport and background runner in one process")
    commands.add_parser("web", help="HTTP only, under gunicorn (Procfile)")
    commands.add_parser("worker", help="background steps only (Procfile)")
    commands.add_parser("demo", help="the whole product offline on embedded defaults")
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    check = commands.add_parser("check-config", help="validate the configuration and say what is wrong")
    check.add_argument("--for", dest="for_mode", choices=["serve", "web", "worker", "demo"], default="serve",
                       help="check what this command needs from the environment (default: serve)")
    args = parser.parse_args(argv)

    mode = {"db": "db", "check-config": "check"}.get(args.command, args.command)
    if mode == "demo":
        _demo_defaults()
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
        print(f"configuration OK: {len(business.stores)} stores, {registers} registers, "
              f"{len(business.people)} people, {len(business.rules)} rules")
        return 0
    logs.configure(config.env.log_level, config.env.log_format, config.env.secrets())

    from bot import processes
    from storage import migrate

    if mode == "db":
        migrate.upgrade(config.env.database_url)
        print("database is at the latest migration")
        return 0
    if mode == "demo":
        _print_demo_banner(config)
    {"serve": processes.serve, "demo": processes.serve, "web": processes.web, "worker": processes.worker}[mode](config)
    return 0


def _demo_defaults() -> None:
    # The demo needs no accounts: secrets it does not get are generated for this run and printed.
    os.environ.setdefault("POS_WEBHOOK_SECRET", secrets.token_urlsafe(24))
    os.environ.setdefault("API_TOKEN", secrets.token_urlsafe(24))
    os.environ.setdefault("DATABASE_URL", "sqlite:///data/demo.db")


def _print_demo_banner(config) -> None:  # type: ignore[no-untyped-def]
    base = f"http://{config.env.host}:{config.env.port}"
    print(f"""
fraud-loss-prevention demo (SQLite at {config.env.database_url}, local only)
  POS intake:     POST {base}/api/v1/transactions   (X-Signature keyed with POS_WEBHOOK_SECRET below)
  read API:       GET  {base}/api/v1/alerts          (Authorization: Bearer API_TOKEN below)
  health:         {base}/readyz   metrics: {base}/metrics
  POS_WEBHOOK_SECRET={config.env.pos_webhook_secret.get_secret_value()}
  API_TOKEN={config.env.api_token.get_secret_value()}
Stop with Ctrl-C.
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
