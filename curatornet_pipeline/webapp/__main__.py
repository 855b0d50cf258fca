"""``python -m curatornet_pipeline.webapp`` (what ``make serve`` runs): the visitor app on 127.0.0.1:8000."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curatornet_pipeline import settings
from curatornet_pipeline.snapshot import snapshot_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curatornet_pipeline.webapp", description=__doc__)
    parser.add_argument("--host", default=settings.serve_host(), help="bind address (loopback by default)")
    parser.add_argument("--port", type=int, default=settings.serve_port())
    parser.add_argument("--snapshot", help="serving snapshot file (default: next to CURATORNET_DUCKDB_PATH)")
    args = parser.parse_args(argv)
    path = Path(args.snapshot) if args.snapshot else snapshot_path(settings.duckdb_path())
    if not path.is_file():
        print(f"error: no serving snapshot at {path}: run `make run` first (or `curatornet refresh` after a run)",
              file=sys.stderr)
        return 2
    import torch
    import uvicorn

    from curatornet_pipeline.webapp.app import create_app
    from curatornet_pipeline.webapp.visitors import secret_from_file

    # A request's work is one small user-tower pass and one matrix-vector product: a second intra-op thread buys
    # nothing there and, on a busy machine, waiting for it dominated the server time.
    torch.set_num_threads(1)

    try:
        secret = settings.visitor_secret() or secret_from_file(path.parent)
        writes_per_minute = settings.likes_per_minute()
        if writes_per_minute < 1:
            raise ValueError(f"{settings.LIKES_PER_MINUTE_ENV} must be at least 1")
        app = create_app(
            path,
            secret=secret,
            operator_token=settings.operator_token(),
            writes_per_minute=writes_per_minute,
            secure_cookie=settings.secure_cookie(),
            shop_url_template=settings.shop_url_template(),
            api_key=settings.api_key(),
            artist_cap=settings.artist_cap(),
        )
    except OSError as error:
        print(f"error: cannot keep the visitor cookie secret in {path.parent} ({error.strerror}): make the folder "
              f"writable or set {settings.VISITOR_SECRET_ENV}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error} (docs/security.md lists the settings)", file=sys.stderr)
        return 2
    problem = app.state.snapshots.problem
    if problem:
        print(f"warning: {problem}; pages answer 503 until a good snapshot is published", file=sys.stderr, flush=True)
    operator = "on (CURATORNET_OPERATOR_TOKEN)" if settings.operator_token() else "off"
    print(f"serving {path} on http://{args.host}:{args.port} (customer pages: {operator})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
