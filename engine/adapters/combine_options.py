"""What `combine` takes, without torch or PEFT, so the faces (the CLI, the mixer's form) can offer and check it:
the methods of PEFT's add_weighted_adapter, which take a density or a rank, and the default density."""

import math

from engine.errors import LoratuiError

EQUAL_RANK = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
SVD = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd")
METHODS = (
    "linear",
    "cat",
    "svd",
    "ties",
    "ties_svd",
    "dare_linear",
    "dare_ties",
    "dare_linear_svd",
    "dare_ties_svd",
    "magnitude_prune",
    "magnitude_prune_svd",
)
USES_DENSITY = tuple(m for m in (*EQUAL_RANK, *SVD) if m not in ("linear", "svd"))
# The share of each adapter's weights that TIES, DARE and magnitude pruning keep when none is asked for: PEFT's
# add_weighted_adapter has no default (its model-merging guide uses 0.2), the TIES paper keeps the top 20%.
DEFAULT_DENSITY = 0.2


def check_options(method: str, weights: list[float], parents: int, density, rank) -> None:
    """Every problem with the combination options, reported at once."""
    errors = []
    if method not in METHODS:
        errors.append(f"method: '{method}' (allowed: {', '.join(METHODS)})")
    if parents < 2:
        errors.append(f"adapters: {parents} given, combining needs at least two")
    if len(weights) != parents:
        errors.append(f"weights: {len(weights)} given for {parents} adapters")
    if any(not math.isfinite(w) for w in weights):
        errors.append("weights: every weight must be a finite number")
    if density is not None and method not in USES_DENSITY:
        errors.append(f"density: {method} takes no density (used by {', '.join(USES_DENSITY)})")
    if density is not None and not 0 < density <= 1:
        errors.append(f"density: {density} (need 0 < D <= 1)")
    if rank is not None and method not in SVD:
        errors.append(f"rank: {method} takes no rank (used by {', '.join(SVD)}; cat adds the ranks up)")
    if rank is not None and rank < 1:
        errors.append(f"rank: {rank} (need at least 1)")
    if errors:
        raise LoratuiError("cannot combine: " + "; ".join(errors), hint="fix the options named above")


def density_of(method: str, density: float | None) -> float | None:
    """The density a method combines with: the one asked for, DEFAULT_DENSITY for a method that prunes."""
    return DEFAULT_DENSITY if density is None and method in USES_DENSITY else density
