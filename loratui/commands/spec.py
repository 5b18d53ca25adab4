"""`loratui spec validate|new|convert`: check a spec, print a commented template, convert a seed-script command."""

import argparse
import sys
from pathlib import Path

from engine.tasks import DEFAULT_TASK, TASKS


def register(sub) -> None:
    parser = sub.add_parser("spec", help="validate, create or convert run specs")
    commands = parser.add_subparsers(dest="spec_command", metavar="ACTION", required=True)
    validate = commands.add_parser("validate", help="check a spec fully (fields, model, dataset columns); trains nothing")
    validate.add_argument("files", nargs="+", metavar="FILE", help="spec TOML files; each is checked and reported")
    validate.set_defaults(func=_validate)
    new = commands.add_parser("new", help="print a commented spec template")
    new.add_argument("--task", default=DEFAULT_TASK, choices=TASKS, help=f"what to train (default: {DEFAULT_TASK})")
    new.add_argument("--family", help="defaults suited to this model family (text-to-image: sd1, sd2, sdxl)")
    new.add_argument("--model", default="", help="base model: Hub id, local folder or builtin:NAME")
    new.add_argument("--data", default="", help="dataset: Hub id, folder, file or builtin:NAME")
    new.set_defaults(func=_new)
    convert = commands.add_parser(
        "convert", help="turn a train_text_to_image_lora.py command line into a spec",
        description="Example: loratui spec convert -- accelerate launch train_text_to_image_lora.py --rank=8 ...")
    convert.add_argument("--out", help="write the spec here instead of printing it")
    convert.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    convert.set_defaults(func=_convert)


def _validate(args) -> int:
    from engine.errors import LoratuiError

    failed = 0
    for file in args.files:
        try:
            _validate_file(file)
        except LoratuiError as exc:
            failed += 1
            # Name the file where the message does not, so each error says which spec it is about.
            message = exc.message if file in exc.message.splitlines()[0] else f"{file}: {exc.message}"
            print(f"error: {message}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {exc.hint}", file=sys.stderr)
    if failed and len(args.files) > 1:
        print(f"{failed} of {len(args.files)} specs are not valid", file=sys.stderr)
    return 2 if failed else 0


def _validate_file(file: str) -> None:
    from engine import preflight
    from engine.home import runs_dir

    spec = preflight.load_checked(file, offline_ok=True)
    output = Path(spec.output.dir).expanduser() if spec.output.dir else runs_dir()
    report = preflight.check(spec, output, images=False, disk=False, offline_ok=True)
    report.raise_if_failed()
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    family = report.info.family if report.info else "?"
    rows = f"{report.rows} rows" if report.rows else "unchecked rows"  # 0 rows is an error, so: not checked
    print(f"ok: {file} is valid ({spec.task}, {family} model, {rows} of {spec.data.source})")


def _new(args) -> int:
    from engine.spec_template import template_toml

    sys.stdout.write(template_toml(args.task, args.family, args.model, args.data))
    return 0


def _convert(args) -> int:
    from engine.atomic import write_atomic
    from engine.errors import LoratuiError
    from engine.spec_convert import convert_command
    from engine.spec_template import commented_toml

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise LoratuiError("no command to convert",
                           hint="loratui spec convert -- accelerate launch train_text_to_image_lora.py --flag=...")
    spec, notes = convert_command(command)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    text = commented_toml(spec.model_dump(), "loratui run spec converted from a diffusers training command")
    if args.out:
        write_atomic(Path(args.out), text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
