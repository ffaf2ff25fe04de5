"""``differland synthesize``: placeholder until the command is implemented (being written)."""

from __future__ import annotations

import argparse


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``synthesize`` subparser."""
    p = subparsers.add_parser(
        "synthesize", help="(not yet available)", formatter_class=formatter_class
    )
    p.set_defaults(func=lambda args: 1)
