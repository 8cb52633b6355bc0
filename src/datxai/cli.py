"""The ``datxai`` command line: one subcommand per stage.

Each stage module exposes ``add_cli(subparsers)`` that adds its subcommand and
sets ``func`` on it (a callable taking the parsed args and returning an exit
code). The modules are imported lazily so that ``datxai --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

# module -> provides add_cli(subparsers)
STAGE_MODULES = (
    "datxai.simulate.cli",
    "datxai.recon.cli",
    "datxai.register.cli",
    "datxai.preprocess.cli",
    "datxai.split",
    "datxai.model.cli",
    "datxai.explain.cli",
    "datxai.group.cli",
    "datxai.stats.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datxai", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"datxai {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in STAGE_MODULES:
        mod = importlib.import_module(name)
        if hasattr(mod, "add_cli"):
            mod.add_cli(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("datxai").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
