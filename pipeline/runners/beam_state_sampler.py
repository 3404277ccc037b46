"""Beam's state sampler at a shorter period, so that ending a bundle does not wait for it.

Each bundle Beam's in-process worker runs starts a StateSampler thread (it attributes the
bundle's time to its transforms, for Beam's metrics), and ending the bundle joins that thread.
The thread sleeps between samples, ramping from 2 ms up to DEFAULT_SAMPLING_PERIOD_MS (200 ms,
`apache_beam/runners/worker/statesampler.py`) as the bundle goes on, and cannot be woken: the
join waits out the current sleep, "up to sampling_period_ms" (statesampler_fast.pyx). A bundle
of a second or more therefore ends 0-200 ms late, 100 ms on average; the Transform, the
Evaluator and the checks' StatisticsGen run several bundles each. Measured: 1.0 s of a taxi
run's main thread waiting in these joins (py-spy), and a DirectRunner pipeline of seven
fused stages of ~1.2 s each took 8.6-8.8 s against 7.9-8.0 s at a 10 ms period.

At PERIOD_MS the wait is at most that. The sampler wakes more often (100 times a second at
most, each a lock taken and a clock read, without the interpreter lock) and attributes time to
transforms more finely, nothing else changes.
"""
from __future__ import annotations

from typing import ContextManager

PERIOD_MS = 10


def _prompt_sampler_class():
    from apache_beam.runners.worker import statesampler

    class PromptStateSampler(statesampler.StateSampler):
        """Beam's StateSampler with PERIOD_MS as its longest sleep, unless one is given."""

        def __init__(self, prefix: str, counter_factory, sampling_period_ms: int = PERIOD_MS):
            super().__init__(prefix, counter_factory, sampling_period_ms)

    return PromptStateSampler


def prompt_state_sampler() -> ContextManager[None]:
    """Within the block, the StateSampler each new bundle processor makes sleeps at most
    PERIOD_MS. BundleProcessor looks `statesampler.StateSampler` up on the module when it
    is created, so this reaches it."""
    from pipeline.runners.module_attribute import replaced

    return replaced("apache_beam.runners.worker.statesampler", "StateSampler",
                    _prompt_sampler_class())
