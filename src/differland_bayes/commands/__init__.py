"""Subcommands of ``differland`` beyond info and simulate, one module each.

Each module exposes ``register(subparsers, formatter_class) -> None``, which adds its
subparser and sets ``func`` (``args -> int`` exit status). Modules must not import JAX or
xarray at import time, so that ``differland --help`` stays fast.
"""

COMMAND_MODULES = ("validate", "synthesize", "fit", "predict", "report", "compare", "demo")
