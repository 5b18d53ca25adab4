"""How numbers read in the CLI's and the dashboard's text: a count with its noun in agreement, a byte size in
binary units, a metric with the precision it deserves."""

_BYTES = ("B", "KiB", "MiB", "GiB", "TiB")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 adapter', '2 adapters'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def human_bytes(n: float | None) -> str:
    """'512 B', '101.0 KiB', '677.7 MiB', '1.2 GiB'."""
    if n is None:
        return "?"
    size, unit = float(n), 0
    while abs(size) >= 1024 and unit < len(_BYTES) - 1:
        size, unit = size / 1024, unit + 1
    return f"{size:.0f} B" if unit == 0 else f"{size:.1f} {_BYTES[unit]}"


def metric(key: str, value: float) -> str:
    """A training figure as a person reads it: memory in MiB/GiB, a step time in seconds, the rest to 4
    significant digits."""
    if key.startswith("memory") or key.endswith(("_allocated", "_reserved", "_peak")):
        return human_bytes(value)
    if key == "step_time":
        return f"{value:.3g} s"
    if key == "samples_per_s":
        return f"{value:.3g}/s"
    return f"{value:.4g}"

