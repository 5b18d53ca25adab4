"""`loratui data preview SPEC [--rows N]`: a spec's first examples as the model will see them."""

import sys

# Trained text when the output is no terminal, where colour cannot tell it from masked text.
PLAIN_MARKS = ("[[", "]]")


def register(sub) -> None:
    parser = sub.add_parser("data", help="look at a spec's training data")
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    preview = commands.add_parser(
        "preview", help="print the first examples as the model will see them, trained tokens highlighted",
        description="Each example as training tokenizes it (template, max_length), the tokens the loss is taken "
                    "on highlighted and masked ones dimmed, with token counts. Piped, trained text is marked "
                    f"{PLAIN_MARKS[0]} {PLAIN_MARKS[1]} instead.")
    preview.add_argument("spec", metavar="SPEC", help="the run spec (TOML)")
    preview.add_argument("--rows", type=int, default=3, metavar="N", help="how many examples (default 3)")
    preview.set_defaults(func=_preview)


def _preview(args) -> int:
    from rich.console import Console

    from engine.errors import LoratuiError
    from engine.spec import load_spec
    from engine.tasks import previewer

    if args.rows < 1:
        raise LoratuiError(f"--rows: {args.rows} (allowed: 1 or more)")
    spec = load_spec(args.spec)
    shown = previewer(spec.task).preview(spec, args.rows)
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    print_preview(console, shown)
    return 0


def print_preview(console, shown) -> None:
    """A header per example (row, token counts, what max_length did), then its text: trained pieces bold on a
    terminal (marked when plain), masked ones dimmed."""
    from rich.text import Text

    template = f", template {shown.template}" if shown.template else ""
    console.print(f"{shown.format} data{template}, the first {len(shown.rows)} rows")
    for row in shown.rows:
        fate = f", {row.fate}" if row.fate else ""
        console.print(Text(f"── row {row.row}: {row.tokens} tokens, {row.trained} trained{fate}", style="bold cyan"))
        text = Text()
        for piece in row.pieces:
            if console.is_terminal:
                text.append(piece.text, style="bold green" if piece.trained else "dim")
            else:
                text.append(f"{PLAIN_MARKS[0]}{piece.text}{PLAIN_MARKS[1]}" if piece.trained else piece.text)
        console.print(text)
