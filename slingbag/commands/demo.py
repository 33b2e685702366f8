"""``slingbag demo``: simulate a vessel phantom and reconstruct it with UBP, the
model-based baseline and SlingBAG."""

from __future__ import annotations


def register(subparsers) -> None:
    from ..benchmark.demo import PRESET, SIZES

    parser = subparsers.add_parser(
        "demo",
        help="end-to-end demo: simulate, reconstruct (UBP, model-based, SlingBAG), compare",
        description="Simulate hard-edged vessels on a sparse planar array with the "
        "benchmark's exact simulator (12 MHz low-pass, 1 % noise), reconstruct them with "
        "UBP, the model-based baseline (TV on a voxel grid chosen from the data) and "
        "SlingBAG, and write the data, the three results, the cloud as PLY, a comparison "
        "figure and a metrics table (SSIMs, CNR, time, peak memory) into one folder.",
    )
    parser.add_argument(
        "--out", default="slingbag-demo", metavar="DIR", help="output folder (./slingbag-demo)"
    )
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="default",
        help="default: 20 x 20 x 6 mm, 12 x 12 sensors (under a minute); tiny: seconds",
    )
    parser.add_argument(
        "--sensors",
        type=int,
        default=None,
        metavar="N",
        help="N x N sensors at 3 mm pitch (default 12, tiny 8)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of phantom, noise and fit (0)")
    parser.add_argument(
        "--preset", default=PRESET, help=f"reconstruction preset or TOML file ({PRESET})"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..benchmark.demo import run_demo

    demo = run_demo(
        args.out,
        size=args.size,
        sensors=args.sensors,
        seed=args.seed,
        preset=args.preset,
        progress=not args.no_progress,
    )
    print()
    print(demo.files["metrics_md"].read_text(encoding="utf-8"))
    width = max(len(k) for k in demo.files)
    for label, path in demo.files.items():
        print(f"  {label:<{width}}  {path}")
    print(f"demo finished in {demo.seconds:.1f} s")
    return 0
