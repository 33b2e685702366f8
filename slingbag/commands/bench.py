"""`slingbag bench {forward,faces,ubp,reconstruct}`: print benchmark figures and ratios."""

from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("bench", help="run a benchmark and print its figures")
    p.add_argument(
        "what", choices=["forward", "faces", "ubp", "reconstruct"], help="which benchmark"
    )
    p.add_argument("--balls", type=int, default=600_000, help="forward: number of balls")
    p.add_argument("--samples", type=int, default=4096, help="forward: samples per sensor")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.what == "forward":
        from ..benchmark.speed import bench_forward, format_forward

        res = bench_forward(n_balls=args.balls, n_samples=args.samples)
        print(json.dumps(res, indent=2) if args.json else format_forward(res))
    elif args.what == "faces":
        from ..benchmark.speed import bench_faces, format_faces

        res = bench_faces()
        print(json.dumps(res, indent=2) if args.json else format_faces(res))
    elif args.what == "reconstruct":
        from ..benchmark.speed import bench_reconstruct, format_reconstruct

        res = bench_reconstruct()
        print(json.dumps(res, indent=2) if args.json else format_reconstruct(res))
    elif args.what == "ubp":
        from ..benchmark.speed import bench_ubp

        res = bench_ubp(verbose=not args.json)  # --json: the JSON alone, parseable
        if args.json:
            print(json.dumps(res, indent=2))
    return 0
