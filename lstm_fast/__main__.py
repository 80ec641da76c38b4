"""Command line of lstm_fast: `python -m lstm_fast demo` (or `lstm-fast demo`) and `info`."""

from __future__ import annotations

import argparse
import os
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def build_parser():
    """The argparse parser of `python -m lstm_fast` (subcommands `demo` and `info`)."""
    # the console script is `lstm-fast`; otherwise this runs as `python -m lstm_fast`
    prog = "lstm-fast" if os.path.basename(sys.argv[0]) == "lstm-fast" else "python -m lstm_fast"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="lstm_fast: a compiled CPU LSTM engine with a Keras-like API.",
        epilog=f"Run '{prog} demo --help' for the demo's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train an LSTM on real data (Mauna Loa CO2) and compare it with naive forecasts",
        description=(
            "Train an LSTM to forecast atmospheric CO2 at Mauna Loa one month ahead, from the "
            "monthly record 1958-2001 shipped in the package (no network needed). Training "
            "uses 1958-1991; the test is 1992-2001. Prints the progress bar, the test RMSE in "
            "ppm of the LSTM and of naive forecasts (last value, same month last year, last "
            "value + last year's change), saves the model, and writes plots (forecast vs "
            "actual, training curves) when matplotlib is installed."
        ),
    )
    demo.add_argument(
        "--epochs", type=_positive_int, default=30, help="training epochs (default: 30)"
    )
    demo.add_argument(
        "--units", type=_positive_int, default=32, help="units of the LSTM layer (default: 32)"
    )
    demo.add_argument(
        "--out",
        default="lstm_fast_demo",
        metavar="DIR",
        help="output directory for the plots and the saved model (default: ./lstm_fast_demo)",
    )
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--quiet", action="store_true", help="no progress bar or model summary, only results"
    )
    commands.add_parser(
        "info",
        help="print the version, the kernel path (ISA), threads and NumPy version",
        description="Print lstm_fast's version, the kernel path (ISA) in use and the ones this "
        "CPU supports, the number of engine threads, and the NumPy version.",
    )
    return parser


def _info():
    import numpy as np

    import lstm_fast
    from lstm_fast import ops

    print(f"lstm_fast {lstm_fast.__version__}")
    print(f"ISA path: {ops.get_isa()} (supported here: {', '.join(ops.supported_isas())})")
    print(f"threads: {ops.get_num_threads()}")
    print(f"numpy {np.__version__}")
    print(f"python {sys.version.split()[0]}")


def main(argv=None):
    """Entry point of `python -m lstm_fast` and of the `lstm-fast` console script.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        The exit status (0 on success).

    Example:

    >>> main(["info"])
    lstm_fast 0.1.0
    ...
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(
            epochs=args.epochs, units=args.units, out_dir=args.out, seed=args.seed, quiet=args.quiet
        )
        return 0
    if args.command == "info":
        _info()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
