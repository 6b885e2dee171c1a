"""The toolkit's copy engine as a command, so the benchmark can time it and read its peak RSS.

    python -m bench.copy.toolkit_copy SRC DST [--prefix P] [--blob-workers N] NAME:TAG...

Both registries are plain HTTP on loopback. Prints the copy report as JSON, with the seconds
spent in `copy_images` itself (the wall time minus interpreter start and imports).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from fabfile.registry.client import Endpoint
from fabfile.registry.copy import ClientPool, CopyOptions, copy_images
from fabfile.registry.reference import parse_reference, target_reference


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--blob-workers", type=int, default=4)
    parser.add_argument("--image-workers", type=int, default=4)
    args = parser.parse_args()

    pool = ClientPool(
        {
            args.src: Endpoint(f"http://{args.src}"),
            args.dst: Endpoint(f"http://{args.dst}"),
        }
    )
    pairs = []
    for image in args.images:
        source = parse_reference(f"{args.src}/{image}")
        pairs.append((source, target_reference(source, args.dst, args.prefix)))
    started = time.perf_counter()
    try:
        report = copy_images(
            pairs,
            pool,
            pool.client(args.dst),
            CopyOptions(blob_workers=args.blob_workers, image_workers=args.image_workers),
        )
    finally:
        pool.close()
    elapsed = time.perf_counter() - started
    json.dump({"engine_s": elapsed, "images": [asdict(i) for i in report.images]}, sys.stdout)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
