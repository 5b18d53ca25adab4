"""`loratui builtin ls|path`: the tiny models and datasets that ship with the engine."""

import json


def register(sub) -> None:
    parser = sub.add_parser("builtin", help="built-in tiny models and datasets")
    commands = parser.add_subparsers(dest="builtin_command", metavar="ACTION", required=True)
    ls = commands.add_parser("ls", help="list the built-ins")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_ls)
    path = commands.add_parser("path", help="build a built-in if needed and print its folder")
    path.add_argument("name", help="e.g. tiny-sd or builtin:tiny-sd")
    path.set_defaults(func=_path)


def _ls(args) -> int:
    from engine import builtin

    rows = builtin.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "built" if row["built"] else "not built"
        print(f"builtin:{row['name']:<14} {row['kind']:<8} {row['summary']}  ({state})")
    return 0


def _path(args) -> int:
    from engine import builtin

    print(builtin.path(args.name))
    return 0
