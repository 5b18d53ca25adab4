"""Adapters in and out of the library: import from a path or the Hub, export to another layout, check a base."""

from pathlib import Path

from engine.adapters.safeload import safe_relative
from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.library import adapters


def import_adapter(db, ref: str, *, weight_name: str | None = None, revision: str | None = None,
                   name: str | None = None, mode: str | None = None, base_model: str | None = None,
                   tags: list[str] | None = None, allow_nonfinite: bool = False) -> tuple[dict, bool]:
    """Register a local file/folder or a Hub adapter; returns the row and whether it is new.

    The files are copied into the content store (mode "copy", the default); mode "link" points at a local
    file where it is and hashes it on every use. Hub downloads are always copied: the Hub cache can be
    cleaned at any time.
    """
    path = Path(ref).expanduser()
    if path.exists():
        if weight_name:
            if not path.is_dir():
                raise LoratuiError("--weight-name picks a file inside a folder or Hub repo",
                                   f"'{ref}' is a file: import it directly")
            path = path / safe_relative(weight_name)
        source, default = str(path.absolute()), None
    else:
        from engine.adapters.hub import fetch_adapter, repo_id

        if repo_id(ref) is None:
            raise LoratuiError(f"no such file or folder: {ref}", "give a .safetensors file, a PEFT folder or a "
                               "Hub id like owner/name")
        if mode == "link":
            raise LoratuiError(f"--link keeps pointing at a local file; '{ref}' is a Hub id",
                               "drop --link: Hub downloads are copied into the library")
        path, source = fetch_adapter(ref, weight_name=weight_name, revision=revision)
        default = adapters.default_name(repo_id(ref).split("/")[-1])
    before = db.execute("SELECT coalesce(max(id), 0) FROM adapters").fetchone()[0]
    row = adapters.register(db, path, name=name or (default and adapters.free_name(db, default)), mode=mode or "copy",
                            base_model=base_model, source=source, tags=tags, allow_nonfinite=allow_nonfinite)
    return row, row["id"] > before


def export_adapter(db, id_or_name, fmt: str, out: str | Path, *, overwrite: bool = False) -> Path:
    from engine.adapters.export import convert

    row = adapters.usable(db, id_or_name)
    task = registry.adapter_task(row.get("task"), row.get("family"))
    offered = task.adapters.export if task else ()
    if task and fmt not in offered:
        raise LoratuiError(f"adapter '{row['name']}' is a {task.name} adapter: it exports as {', '.join(offered)}, "
                           f"not {fmt}", f"loratui library export {row['id']} --format {offered[0]} --out DIR")
    return convert(row["path"], Path(out).expanduser(), fmt, overwrite=overwrite, name=row["name"])


def check_adapter(db, id_or_name, base: str | None = None):
    """Does the adapter fit `base` (default: the base model it records)? A CheckReport."""
    from engine.adapters.basemodel import check_against_base

    row = adapters.usable(db, id_or_name)
    base = base or row["base_model"]
    if not base:
        raise LoratuiError(f"adapter '{row['name']}' records no base model", "pass --base MODEL")
    report = check_against_base(row["path"], base)
    report.adapter = f"#{row['id']} {row['name']}"
    return report


def check_fit(rows: list[dict], base: str | None = None) -> None:
    """Before anything loads: the adapters are of one family, and each fits `base` (headers only), so a
    mismatch is one line instead of a loader's flood of size mismatches."""
    from engine.adapters.basemodel import check_against_base

    known = [row for row in rows if row["family"]]
    if len({row["family"] for row in known}) > 1:
        mix = ", ".join(f"{row['name']} is {row['family']}" for row in known)
        raise LoratuiError(f"the adapters are of different families ({mix})", "use adapters made for one base model")
    for row in rows if base else []:
        report = check_against_base(row["path"], base)
        if not report.fits:
            raise LoratuiError(f"adapter '{row['name']}' does not fit {base}: {_first_problem(report)}",
                               f"`loratui library check {row['id']} --base {base}` lists every module that does not")


def _first_problem(report) -> str:
    if None not in (report.base_family, report.adapter_family) and report.base_family != report.adapter_family:
        return f"family: adapter is {report.adapter_family}, base is {report.base_family}"
    if report.mismatched:
        return f"{len(report.mismatched)} of {report.checked} modules have other shapes (e.g. {report.mismatched[0]})"
    if report.missing:
        return f"{len(report.missing)} of {report.checked} modules are not in the base (e.g. {report.missing[0]})"
    return "none of its modules is in the base"
