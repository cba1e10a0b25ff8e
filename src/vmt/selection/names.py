"""The strategy names (no numpy here: the CLI's help lists them)."""

UNCERTAINTY_STRATEGIES = ("least_confidence", "margin", "entropy")
STRATEGIES = (*UNCERTAINTY_STRATEGIES, "rare_class", "random", "diverse")
