"""``python -m curatornet_pipeline.webapp`` (what ``make serve`` runs): the visitor app on 127.0.0.1:8000."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from curatornet_pipeline import settings
from curatornet_pipeline.snapshot import snapshot_path

HOST_ENV = "CURATORNET_SERVE_HOST"
PORT_ENV = "CURATORNET_SERVE_PORT"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curatornet_pipeline.webapp", description=__doc__)
    parser.add_argument("--host", default=os.environ.get(HOST_ENV, "127.0.0.1"), help="bind address (loopback by default)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(PORT_ENV, "8000")))
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

    # A request's work is one small user-tower pass and one matrix-vector product: a second intra-op thread buys
    # nothing there and, on a busy machine, waiting for it dominated the server time.
    torch.set_num_threads(1)

    print(f"serving {path} on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(path), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
