"""Plain-text views of library rows for the CLI: a table, a one-line summary, the full details, a check report."""

import json
import tomllib

from loratui.columns import columns
from loratui.words import count, human_bytes, metric

_COLUMNS = (("ID", "id"), ("NAME", "name"), ("STATUS", "status"), ("FAMILY", "family"), ("FORMAT", "format"), ("RANK", "rank"),
            ("ALPHA", "alpha"), ("BASE", "base_model"), ("TAGS", "tags"))
# What gives way on a narrow terminal (a name is copied from this list: it is never cut).
_SHRINK = tuple(i for i, (_, key) in enumerate(_COLUMNS) if key in ("base_model", "tags"))


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(rows: list[dict], width: int | None = None) -> str:
    """One line per adapter; `width`: the terminal's columns (None when piped: nothing is cut)."""
    if not rows:
        return "no adapters"
    lines = [[title for title, _ in _COLUMNS], *([_cell(row.get(key)) for _, key in _COLUMNS] for row in rows)]
    return columns(lines, shrink=_SHRINK, width=width)


def summary(row: dict) -> str:
    facts = [row["format"], row["family"] or "family unknown", f"rank {_cell(row['rank'])}",
             f"alpha {_cell(row['alpha'])}"]
    return f"#{row['id']} {row['name']} ({', '.join(facts)})"


def details(row: dict) -> str:
    """Aligned `key: value` lines: the adapter, the run that trained it (its spec summarised), lineage, metadata."""
    alpha = _cell(row["alpha"]) if row["alpha"] is not None else "not recorded (loaders use alpha = rank)"
    entries = [(2, key, value) for key, value in (
        ("path", row["path"]), ("source", row.get("source") or "-"), ("format", row["format"]),
        ("task", row.get("task") or "unknown"), ("family", row["family"] or "unknown"),
        ("base model", row["base_model"] or "-"),
        ("rank / alpha", f"{_cell(row['rank'])} / {alpha}"), ("targets", _cell(row["target_modules"])),
        ("size", human_bytes(row["size"])), ("sha256", row["sha256"]), ("created", row["created"]),
        ("tags", _cell(row["tags"])), ("trigger words", _cell(row["trigger_words"])),
        ("weight", f"{row['preferred_weight']:g}"), ("notes", row["notes"] or "-"),
    )]
    entries += [(2, "warning", w) for w in row["warnings"]]
    run = row.get("run")
    if run:
        entries.append((2, "trained by run", f"{run['id']} ({run['status']}, step {run['step']}/{run['total_steps']})"))
        entries += [(4, key, value) for key, value in _run_facts(run, row["name"])]
    elif row["source_run"]:
        entries.append((2, "trained by run", row["source_run"]))
    lineage = row.get("lineage") or {}
    for parent in lineage.get("parents", []):
        ref = f"#{parent['parent']} " if parent["parent"] is not None else "(removed) "
        entries.append((2, "made from", f"{ref}{parent['parent_name']} x {_cell(parent['weight'])} by {parent['method']}"))
    entries += [(2, "used in", f"#{child['id']} {child['name']} ({child['method']})")
                for child in lineage.get("children", [])]
    if row.get("generations"):
        entries.append((2, "generations", str(row["generations"])))
    lines = [f"#{row['id']} {row['name']}", *_aligned(entries)]
    metadata = {k: v for k, v in row["metadata"].items() if k != "loratui.derived"}
    if metadata:
        texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in sorted(metadata.items())}
        lines += ["  metadata:", *_aligned([(4, k, t if len(t) <= 100 else t[:99] + "…") for k, t in texts.items()])]
    return "\n".join(lines)


def _aligned(entries: list[tuple[int, str, str]]) -> list[str]:
    """(indent, key, value) as `key: value` lines whose values all start in one column."""
    column = max(indent + len(key) + 1 for indent, key, _ in entries)
    return [f"{' ' * indent}{key}:".ljust(column) + f" {value}" for indent, key, value in entries]


# What explains how a run ended, by status; a finished run had none, whatever an earlier stop left behind.
_ENDING = {"stopped": ("reason", "error"), "failed": ("error", "hint", "traceback_path"), "crashed": ("error",)}


def _run_facts(run: dict, name: str) -> list[tuple[str, str]]:
    summary = {**(run.get("summary") or {}), "error": run.get("error")}
    facts = _spec_summary(run["spec"], name) if run.get("spec") else []
    if run["status"] == "finished" and summary.get("final_loss") is not None:
        facts.append(("final loss", f"{summary['final_loss']:g}"))
    base = summary.get("base_metrics") or {}
    facts += [(f"eval {key}", f"{value:.4g}" + (f" (base model {base[key]:.4g})" if key in base else ""))
              for key, value in (summary.get("metrics") or {}).items()]
    facts += [(key.replace("_", " "), str(summary[key])) for key in _ENDING.get(run["status"], ()) if summary.get(key)]
    if summary.get("checkpoint"):
        facts.append(("last checkpoint", summary["checkpoint"]))
    facts += [(f"last {key}", metric(key, value)) for key, value in sorted(run.get("final_metrics", {}).items())
              if not key.startswith("eval/")]  # the eval figures are above, beside the base model's
    facts += [(f"sample step {s['step']}", s["path"] if s.get("text") is None else f"{s['prompt']!r} -> {s['text']!r}")
              for s in run.get("samples", [])]
    return facts


def _spec_summary(text: str, name: str) -> list[tuple[str, str]]:
    """A few lines of the run's spec, read as stored: it may predate today's fields, so nothing is required."""
    whole = ("spec", f"`loratui library show {name} --spec` prints it whole")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return [whole]
    steps, epochs, rate = _at(spec, "train.max_steps"), _at(spec, "train.num_epochs"), _at(spec, "train.learning_rate")
    rank = _at(spec, "lora.rank")
    facts = [
        ("task", _at(spec, "task")), ("model", _at(spec, "model.pretrained")), ("data", _at(spec, "data.source")),
        ("rank / alpha", rank and f"{_cell(rank)} / {_cell(_at(spec, 'lora.alpha'))}"),
        ("length", count(steps, "step") if steps else count(epochs, "epoch") if epochs else None),
        ("learning rate", f"{_cell(rate)} ({_at(spec, 'train.lr_scheduler') or '?'})" if rate else None),
        ("resolution", _at(spec, "train.resolution")),
    ]
    return [(key, str(value)) for key, value in facts if value is not None] + [whole]


def _at(data, path: str):
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def check_report(report) -> str:
    verdict = "fits" if report.fits else "does NOT fit"
    lines = [f"{report.adapter} {verdict} {report.base}: {report.matched}/{report.checked} modules match"]
    if None not in (report.base_family, report.adapter_family) and report.base_family != report.adapter_family:
        lines.append(f"  family: adapter is {report.adapter_family}, base is {report.base_family}")
    lines += [f"  missing in base: {name}" for name in report.missing]
    lines += [f"  shape mismatch:  {problem}" for problem in report.mismatched]
    return "\n".join(lines)
