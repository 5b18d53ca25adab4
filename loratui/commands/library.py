"""`loratui library ...`: the adapter library from the shell. Every ADAPTER argument is an id or a name."""

import argparse
import json

PAGE = 100  # a screenful or two; a 10,000-adapter library lists instantly and `--all` shows the rest


def register(sub) -> None:
    parser = sub.add_parser("library", help="adapters: list, search, import, export, check")
    commands = parser.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    ls = commands.add_parser("ls", help="list adapters, newest first")
    _filters(ls)
    ls.add_argument("--limit", type=int, help=f"show at most this many (default {PAGE} in text, all in JSON)")
    ls.add_argument("--all", action="store_true", help="show every adapter")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_ls)

    show = commands.add_parser("show", help="everything known about an adapter, lineage included")
    show.add_argument("adapter", help="id or name")
    shown = show.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="machine-readable output")
    shown.add_argument("--spec", action="store_true", help="print only the spec of the run that trained it, whole")
    show.set_defaults(func=_show)

    search = commands.add_parser("search", help="full-text search over names, tags, trigger words, notes")
    search.add_argument("text", nargs="+", help="words; each must match (as a prefix)")
    _filters(search)
    search.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(func=_search)

    tag = commands.add_parser("tag", help="add (+t) or remove (-t) tags", usage="%(prog)s ADAPTER +TAG -TAG ...")
    tag.add_argument("adapter", help="id or name")
    tag.add_argument("changes", nargs=argparse.REMAINDER, help="+tag adds, -tag removes, a bare tag adds")
    tag.set_defaults(func=_tag)

    edit = commands.add_parser("edit", help="trigger words, preferred weight, notes, name, base model")
    edit.add_argument("adapter", help="id or name")
    edit.add_argument("--trigger", nargs="+", metavar="WORD", help="replace the trigger words (commas split too)")
    edit.add_argument("--weight", type=float, help="preferred weight when the adapter is applied")
    edit.add_argument("--notes", help="free text, searchable")
    edit.add_argument("--name", help="rename the adapter")
    edit.add_argument("--base", help="the base model it belongs to ('' clears it)")
    edit.set_defaults(func=_edit)

    rm = commands.add_parser("rm", help="remove an adapter and its stored copy (a --link'ed file is yours: kept)")
    rm.add_argument("adapter", help="id or name")
    rm.add_argument("--keep-files", action="store_true",
                    help="keep its stored copy (`library gc` removes such copies later)")
    rm.add_argument("--delete-files", action="store_true", help=argparse.SUPPRESS)  # the default now
    rm.set_defaults(func=_rm)

    gc = commands.add_parser("gc", help="delete the stored copies no entry uses, and say how much that freed")
    gc.add_argument("--dry-run", action="store_true", help="only list them")
    gc.set_defaults(func=_gc)

    export = commands.add_parser("export", help="write an adapter in another layout: diffusers or kohya (image "
                                 "LoRAs), peft (a folder PeftModel.from_pretrained loads)")
    export.add_argument("adapter", help="id or name")
    export.add_argument("--format", required=True, choices=export_formats(),
                        help="target layout (a task's adapters offer their own)")
    export.add_argument("--out", required=True,
                        help="a folder (created if need be) that receives pytorch_lora_weights.safetensors (diffusers) "
                             "or NAME.safetensors (kohya), or a path ending in .safetensors")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")
    export.set_defaults(func=_export)

    imp = commands.add_parser("import", help="add a LoRA file, PEFT folder or Hub repo to the library")
    imp.add_argument("source", metavar="PATH_OR_HUB_ID", help="a .safetensors file, a PEFT folder, or owner/name")
    imp.add_argument("--weight-name", metavar="FILE", help="which file of a Hub repo or folder to import")
    imp.add_argument("--revision", help="Hub branch, tag or commit (default main)")
    imp.add_argument("--name", help="library name (default: from the file or repo)")
    where = imp.add_mutually_exclusive_group()
    where.add_argument("--copy", dest="mode", action="store_const", const="copy",
                       help="copy into the library's store (the default)")
    where.add_argument("--link", dest="mode", action="store_const", const="link",
                       help="keep pointing at this local file; its sha256 is checked on every use")
    imp.add_argument("--base", help="base model it was trained on (Hub id, folder or builtin:NAME)")
    imp.add_argument("--tag", action="append", default=[], metavar="TAG", help="tag it (repeatable)")
    imp.add_argument("--allow-nonfinite", action="store_true", help="keep an adapter with inf/nan, flagged")
    imp.set_defaults(func=_import)

    check = commands.add_parser("check", help="are the files as registered, and does an adapter fit a base model?",
                                description="With no ADAPTER: hash every entry's files and list those missing or "
                                            "changed. With one: its files, then the keys that do not fit the base.")
    check.add_argument("adapter", nargs="?", help="id or name (default: check every entry's files)")
    check.add_argument("--base", help="base model (default: the one the adapter records)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_check)


def _filters(parser) -> None:
    parser.add_argument("--family", help="sd1, sd2, sdxl, llm, ...")
    parser.add_argument("--tag", help="only adapters with this tag")
    parser.add_argument("--base", help="only adapters for this base model")


def _db():
    from loratui.db.library import open_db

    return open_db()


def _ls(args) -> int:
    from loratui.library import adapters

    db = _db()
    limit = None if args.all or (args.json and args.limit is None) else (args.limit or PAGE)
    rows = adapters.list_adapters(db, family=args.family, tag=args.tag, base=args.base, limit=limit)
    _print_rows(_with_status(rows), args.json)
    if not args.json and limit is not None and len(rows) == limit:
        total = adapters.count_adapters(db, family=args.family, tag=args.tag, base=args.base)
        if total > limit:
            print(f"... newest {limit} of {total} shown; --all lists every one, --tag/--family/--base narrow it")
    return 0


def _search(args) -> int:
    from loratui.library import adapters

    rows = adapters.search(_db(), " ".join(args.text), limit=args.limit, family=args.family, tag=args.tag,
                           base=args.base)
    return _print_rows(_with_status(rows), args.json)


def _with_status(rows: list[dict]) -> list[dict]:
    """Each row with the quick status of its files: ok, missing or changed (`library check` hashes them)."""
    from loratui.library.store import status

    for row in rows:
        row["status"] = status(row)
    return rows


def _print_rows(rows: list[dict], as_json: bool) -> int:
    from loratui.library.render import table

    print(json.dumps(rows, indent=2) if as_json else table(rows, terminal_width()))
    return 0


def terminal_width() -> int | None:
    """The terminal's columns (COLUMNS when set), or None when the output is piped: lines are then never cut."""
    import shutil
    import sys

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _show(args) -> int:
    from loratui.library import adapters
    from loratui.library.render import details

    row = adapters.details(_db(), args.adapter)
    if args.spec:
        from engine.errors import LoratuiError

        if not (row["run"] or {}).get("spec"):
            raise LoratuiError(f"adapter '{row['name']}' has no spec: no run recorded in this library trained it",
                               f"`loratui library show {row['name']}` shows what is known about it")
        print(row["run"]["spec"], end="")
        return 0
    print(json.dumps(row, indent=2, default=str) if args.json else details(row))
    return 0


def _tag(args) -> int:
    from loratui.library import adapters

    row = adapters.tag(_db(), args.adapter, args.changes)
    print(f"#{row['id']} {row['name']}: {' '.join(row['tags']) or '(no tags)'}")
    return 0


def _edit(args) -> int:
    from loratui.library import adapters

    row = adapters.edit(_db(), args.adapter, trigger_words=args.trigger, preferred_weight=args.weight,
                        notes=args.notes, name=args.name, base_model=args.base)
    print(f"#{row['id']} {row['name']}: updated")
    return 0


def _rm(args) -> int:
    from loratui.library import adapters

    row, deleted = adapters.remove(_db(), args.adapter, delete_files=not args.keep_files)
    if deleted:
        kept = ""
    elif row.get("storage") == "link":
        kept = f" (your file stays: {row['path']})"
    elif args.keep_files:
        kept = f" (stored copy kept at {row['path']}; `loratui library gc` deletes it)"
    else:
        kept = f" (another entry uses its stored copy: {row['path']})"
    print(f"removed #{row['id']} {row['name']}{kept}")
    for path in deleted:
        print(f"deleted {path}")
    return 0


def _gc(args) -> int:
    from loratui.library.store import collect
    from loratui.words import count, human_bytes

    found = collect(_db(), remove=not args.dry_run)
    for folder, size in found:
        print(f"{'unused' if args.dry_run else 'deleted'} {folder} ({human_bytes(size)})")
    total = human_bytes(sum(size for _, size in found))
    copies = count(len(found), "stored copy", "stored copies")
    if args.dry_run:
        print(f"{copies} no entry uses ({total}); `loratui library gc` deletes them")
    else:
        print(f"{copies} deleted, {total} freed" if found else "nothing to delete: every stored copy is in use")
    return 0


def export_formats() -> list[str]:
    from engine.tasks import registry

    return sorted({fmt for task in registry.tasks() for fmt in task.adapters.export})


def _export(args) -> int:
    from loratui.library.transfer import export_adapter

    path = export_adapter(_db(), args.adapter, args.format, args.out, overwrite=args.force)
    print(f"wrote {path}")
    return 0


def _import(args) -> int:
    from loratui.library.render import summary
    from loratui.library.transfer import import_adapter

    row, new = import_adapter(_db(), args.source, weight_name=args.weight_name, revision=args.revision,
                              name=args.name, mode=args.mode, base_model=args.base, tags=args.tag,
                              allow_nonfinite=args.allow_nonfinite)
    print(("imported " if new else "already in the library: ") + summary(row))
    for warning in row["warnings"]:
        print(f"warning: {warning}")
    return 0


def _check(args) -> int:
    from dataclasses import asdict

    from loratui.library.render import check_report
    from loratui.library.transfer import check_adapter

    db = _db()
    if args.adapter is None:
        return _check_files(db, args)
    report = check_adapter(db, args.adapter, args.base)
    print(json.dumps({**asdict(report), "fits": report.fits}, indent=2) if args.json else check_report(report))
    return 0 if report.fits else 1


def _check_files(db, args) -> int:
    """Every entry's files hashed against its recorded sha256; non-zero when any is missing or changed."""
    from engine.errors import LoratuiError
    from loratui.library import adapters
    from loratui.library.store import OK, status
    from loratui.words import count

    if args.base:
        raise LoratuiError("--base checks one adapter against a base model", "name the adapter: check ADAPTER --base M")
    found = [{"id": row["id"], "name": row["name"], "path": row["path"], "status": status(row, deep=True)}
             for row in adapters.list_adapters(db)]
    bad = [entry for entry in found if entry["status"] != OK]
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for entry in bad:
            print(f"#{entry['id']} {entry['name']}: {entry['status']} ({entry['path']})")
        verdict = f"{len(bad)} missing or changed" if bad else "every file is as registered"
        print(f"{count(len(found), 'adapter')} checked: {verdict}")
    return 1 if bad else 0
