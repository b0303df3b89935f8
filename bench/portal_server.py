"""The portal alone in a process (uvicorn), for bench_records.py's CSV download: what the
download costs in resident memory is then this process's alone.

    python -m bench.portal_server DATABASE_URL POSTGRES_SCHEMA_OR_EMPTY PORT
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from bench.bench_records import context
from coobill.web.app import create_app


def main(url: str, schema_name: str, port: int) -> None:
    logging.disable(logging.INFO)
    ctx = context(url, schema_name or None)
    uvicorn.run(create_app(ctx), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
