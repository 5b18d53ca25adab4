"""Adapters picked for an operation: library rows with their weights, checked the same way for both faces."""

from engine.errors import LoratuiError
from loratui.library import adapters
from loratui.library.requests import Pick

DEFAULT_GRID_WEIGHTS = [0.25, 0.5, 0.75, 1.0]


def choose(db, picks: list[Pick], scales: dict, *, grid: bool = False,
           grid_weights: list[float] | None = None) -> list[tuple[dict, object]]:
    """(library row, weight | per-block scales | a contact sheet's weights) per pick, in order.

    Every entry's files must hash to what was registered (adapters.usable) before anything loads.
    """
    chosen, explicit = [], {}
    for pick in picks:
        row = adapters.usable(db, pick.ref)
        if row["name"] in explicit:
            raise LoratuiError(f"adapter '{row['name']}' is given twice", "give each adapter once")
        explicit[row["name"]] = pick.weight is not None
        chosen.append((row, _weight(row, pick.weight, grid, grid_weights)))
    for name, scale in scales.items():
        if grid:
            raise LoratuiError("--scales cannot be combined with --grid", "a grid varies one weight per adapter")
        matches = [i for i, (row, _) in enumerate(chosen) if name in (row["name"], str(row["id"]))]
        if not matches:
            raise LoratuiError(f"--scales names '{name}', which is not among the --adapter options", "add it")
        row = chosen[matches[0]][0]
        if explicit[row["name"]]:
            raise LoratuiError(f"'{name}' has both a weight and --scales", "give one or the other")
        chosen[matches[0]] = (row, scale)
    return chosen


def _weight(row: dict, weight, grid: bool, grid_weights: list[float] | None):
    if weight is None:
        return list(grid_weights or DEFAULT_GRID_WEIGHTS) if grid else row["preferred_weight"]
    if grid:
        return list(weight) if isinstance(weight, list) else [weight]
    if isinstance(weight, list):
        raise LoratuiError(f"adapter '{row['name']}' is given several weights",
                           "several weights make a contact sheet: ask for a grid")
    return weight


def recorded_base(chosen) -> str:
    """The one base model the chosen adapters record."""
    bases = {row["base_model"] for row, _ in chosen}
    if len(bases) == 1 and None not in bases:
        return bases.pop()
    names = ", ".join(f"{row['name']}: {row['base_model'] or 'unknown'}" for row, _ in chosen) or "no adapters"
    raise LoratuiError(f"cannot tell which base model to use ({names})", "give --base MODEL")


def used(chosen, *, grid: bool = False) -> list[dict]:
    """The adapters as a generation or merge records them: {"id", "name", "weight"}, "scales" or "weights"."""
    entries = []
    for row, weight in chosen:
        entry = {"id": row["id"], "name": row["name"], "weight": None}
        if grid:
            entry["weights"] = weight
        elif isinstance(weight, dict):
            entry["scales"] = weight
        else:
            entry["weight"] = weight
        entries.append(entry)
    return entries


def check_mix(rows: list[dict], action: str | None = None) -> str:
    """The try form (engine.tasks.registry.TryForm kind) the mixer shows for these library rows; a one-line error
    when they cannot be mixed (none, adapters of different models) or, given an `action`, cannot go through it
    (one adapter to combine, several where the task takes one at a time)."""
    from engine.tasks import registry

    if not rows:
        raise LoratuiError("no adapter is marked", "mark adapters with space, or put the cursor on one")
    families = {row["family"] for row in rows if row["family"]}
    owners = {task.name for row in rows if (task := registry.adapter_task(row.get("task"), row.get("family")))}
    if len(families) > 1 or len(owners) > 1:
        mix = ", ".join(f"{row['name']} is {row['family'] or row.get('task') or 'of unknown family'}" for row in rows)
        raise LoratuiError(f"the marked adapters are for different models ({mix})",
                           "mark adapters made for one base model (space unmarks)")
    task = registry.adapter_task(rows[0].get("task"), rows[0].get("family"))
    form = task.adapters.try_form.kind if task else "image"
    alone = {"generate": form in ("classify", "segment"), "merge": bool(task and task.adapters.own_head)}
    if alone.get(action) and len(rows) > 1:
        raise LoratuiError(f"{task.name} adapters are {'tried' if action == 'generate' else 'merged'} one at a time "
                           f"({len(rows)} marked)", "mark one adapter, or combine them first")
    if action == "combine" and len(rows) < 2:
        raise LoratuiError(f"combine makes one adapter of two or more ({len(rows)} marked)",
                           "mark the adapters to combine with space")
    if action == "sweep" and form != "image":
        raise LoratuiError(f"a sweep draws images; {task.name} adapters are tried on {task.adapters.try_form.flag}",
                           "use generate")
    return form
