"""Plain-text views of library rows for the CLI: a table, a one-line summary, the full details, a check report."""

import json

_COLUMNS = (("ID", "id"), ("NAME", "name"), ("STATUS", "status"), ("FAMILY", "family"), ("FORMAT", "format"), ("RANK", "rank"),
            ("ALPHA", "alpha"), ("BASE", "base_model"), ("TAGS", "tags"))
_MAX_WIDTH = 40


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text if len(text) <= _MAX_WIDTH else text[: _MAX_WIDTH - 1] + "…"


def table(rows: list[dict]) -> str:
    if not rows:
        return "no adapters"
    cells = [[_cell(row.get(key)) for _, key in _COLUMNS] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _) in enumerate(_COLUMNS)]
    lines = [[title for title, _ in _COLUMNS], *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def summary(row: dict) -> str:
    facts = [row["format"], row["family"] or "family unknown", f"rank {_cell(row['rank'])}",
             f"alpha {_cell(row['alpha'])}"]
    return f"#{row['id']} {row['name']} ({', '.join(facts)})"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def details(row: dict) -> str:
    alpha = _cell(row["alpha"]) if row["alpha"] is not None else "not recorded (loaders use alpha = rank)"
    lines = [
        f"#{row['id']} {row['name']}",
        f"  path            {row['path']}",
        f"  source          {row.get('source') or '-'}",
        f"  format          {row['format']}",
        f"  family          {row['family'] or 'unknown'}",
        f"  base model      {row['base_model'] or '-'}",
        f"  rank / alpha    {_cell(row['rank'])} / {alpha}",
        f"  targets         {_cell(row['target_modules'])}",
        f"  size            {_size(row['size'])}   sha256 {row['sha256']}",
        f"  created         {row['created']}",
        f"  tags            {_cell(row['tags'])}",
        f"  trigger words   {_cell(row['trigger_words'])}",
        f"  weight          {row['preferred_weight']:g}",
        f"  notes           {row['notes'] or '-'}",
    ]
    lines += [f"  warning         {w}" for w in row["warnings"]]
    run = row.get("run")
    if run:
        lines.append(f"  trained by run  {run['id']} ({run['status']}, step {run['step']}/{run['total_steps']})")
        for key, value in sorted((run.get("summary") or {}).items()):
            lines.append(f"    {key:<14}{json.dumps(value) if not isinstance(value, str) else value}")
        lines += [f"    last {key:<9}{value:g}" for key, value in sorted(run.get("final_metrics", {}).items())]
        lines += [f"    sample step {s['step']}: {s['path']}" for s in run.get("samples", [])]
        if run.get("spec"):
            lines.append("    spec")
            lines += [f"      {line}" for line in run["spec"].splitlines()]
    elif row["source_run"]:
        lines.append(f"  trained by run  {row['source_run']}")
    lineage = row.get("lineage") or {}
    for parent in lineage.get("parents", []):
        ref = f"#{parent['parent']} " if parent["parent"] is not None else "(removed) "
        lines.append(f"  made from       {ref}{parent['parent_name']} x {_cell(parent['weight'])} "
                     f"by {parent['method']}")
    for child in lineage.get("children", []):
        lines.append(f"  used in         #{child['id']} {child['name']} ({child['method']})")
    if row.get("generations"):
        lines.append(f"  generations     {row['generations']}")
    metadata = {k: v for k, v in row["metadata"].items() if k != "loratui.derived"}
    if metadata:
        lines.append("  metadata")
        for key, value in sorted(metadata.items()):
            text = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"    {key}: {text if len(text) <= 100 else text[:99] + '…'}")
    return "\n".join(lines)


def check_report(report) -> str:
    verdict = "fits" if report.fits else "does NOT fit"
    lines = [f"{report.adapter} {verdict} {report.base}: {report.matched}/{report.checked} modules match"]
    if None not in (report.base_family, report.adapter_family) and report.base_family != report.adapter_family:
        lines.append(f"  family: adapter is {report.adapter_family}, base is {report.base_family}")
    lines += [f"  missing in base: {name}" for name in report.missing]
    lines += [f"  shape mismatch:  {problem}" for problem in report.mismatched]
    return "\n".join(lines)
