"""Argument parsing only: each command module registers its subcommands and calls one function elsewhere."""

import argparse
import importlib
import sys

from engine.errors import LoratuiError, save_traceback
from loratui.screens import MAIN_KEYS

# Modules under loratui.commands, each with register(subparsers). They must import cheaply:
# heavy imports belong inside the handlers.
COMMAND_MODULES = ["builtin", "library", "ops", "spec", "data", "run", "runs", "queue"]


def build_parser(commands: bool = True) -> argparse.ArgumentParser:
    """The whole parser; without `commands`, only the dashboard's options (and no -h, which asks for all)."""
    parser = argparse.ArgumentParser(
        prog="loratui",
        description="Terminal dashboard and adapter manager for LoRA fine-tuning. "
        "With no command, opens the dashboard.",
        add_help=commands,
    )
    parser.add_argument("--screen", choices=MAIN_KEYS, help="open this dashboard screen (keys 1-4 in this order)")
    parser.set_defaults(command=None)
    if commands:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name in COMMAND_MODULES:
            importlib.import_module(f"loratui.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The dashboard's first frame does not wait for every command's module: they are imported for a command.
    args, rest = build_parser(commands=False).parse_known_args(argv)
    if rest:
        args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from loratui.app import run_app

            return run_app(screen=args.screen) or 0
        return args.func(args) or 0
    except LoratuiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        path = save_traceback(exc)
        print(f"error: unexpected failure, traceback saved in {path}", file=sys.stderr)
        return 1



if __name__ == "__main__":
    sys.exit(main())
