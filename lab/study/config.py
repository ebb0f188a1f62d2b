"""`StudyConfig`: what the activation study runs, in one frozen record.

Its own module, below `run` and the modules `run` calls (`cost`, `targets`), so that each of
them imports it without importing `run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from topicproj.models.core.options import ACTIVATIONS, DEFAULTS


@dataclass(frozen=True)
class StudyConfig:
    activations: tuple[str, ...] = ACTIVATIONS
    max_epochs: int = DEFAULTS.max_epochs  # early stopping ends most runs far sooner
    sklearn_baselines: bool = True
    # 1. planted topics: a noise-rate sweep at the base short share, and a short-share sweep at
    # the base noise rate (a cross through the grid, not the full product, to bound the cost)
    planted_items: int = 3000
    planted_topics: int = 12
    planted_keywords_per_topic: int = 15
    planted_filler_keywords: int = 400
    noise_rates: tuple[float, ...] = (0.0, 1 / 6, 1 / 3, 1 / 2, 2 / 3)
    short_fractions: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)
    base_noise_rate: float = 1 / 3  # the setting of the target
    base_short_fraction: float = 0.2
    planted_seeds: tuple[int, ...] = (0, 1)
    planted_min_df: int = 2
    # 2. real catalog
    topics: tuple[int, ...] = (50, 100)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    min_df: int = 3
    # 3. trade-off, at topics[0]: an L1 sweep (retraining), and a threshold sweep on the models
    # of part 2 (no retraining). leaky_relu is left out of the L1 sweep: its negative side is
    # never exactly zero, so no L1 weight moves it along the sparsity axis.
    tradeoff_activations: tuple[str, ...] = ("relu", "prelu", "overlap")
    l1_values: tuple[float, ...] = (0.0, 3e-3, 1e-2, 3e-2, 1e-1)
    tradeoff_seeds: tuple[int, ...] = (0,)
    zero_levels: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    # 6. cost
    cost_items: int = 32768  # items per timed batch (the catalog repeated)
    cost_rounds: int = 30

    @classmethod
    def smoke(cls) -> StudyConfig:
        """A setting that runs every part in seconds: for tests, not for conclusions."""
        return cls(
            max_epochs=4,
            planted_items=300,
            planted_topics=5,
            planted_keywords_per_topic=8,
            planted_filler_keywords=40,
            noise_rates=(0.0, 1 / 3),
            short_fractions=(0.2, 0.5),
            planted_seeds=(0,),
            topics=(5,),
            seeds=(0, 1),
            min_df=2,
            l1_values=(0.0, 1e-2),
            tradeoff_seeds=(0,),
            zero_levels=(0.5, 0.9),
            cost_items=2048,
            cost_rounds=3,
        )
