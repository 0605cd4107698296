"""Runs the local Sigstore instance until interrupted, for manual use.

PYTHONPATH=tests python -m services.sigstore_local --workdir DIR
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from . import start_local_sigstore


def main() -> None:
    """Starts the instance and prints how to use it."""
    parser = argparse.ArgumentParser(prog="python -m services.sigstore_local")
    parser.add_argument("--workdir", type=Path, required=True, help="directory for keys and config")
    args = parser.parse_args()
    instance = start_local_sigstore(args.workdir)
    print(f"url:            {instance.url}")
    print(f"trust config:   {instance.trust_config}")
    print(f"identity:       {instance.identity}")
    print(f"issuer:         {instance.issuer}")
    print(f"identity token: {instance.identity_token}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        instance.stop()


if __name__ == "__main__":
    main()
