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
