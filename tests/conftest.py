"""Settings for the whole suite.

Hypothesis runs with the `clocklab` profile: no per-example deadline and no
`too_slow` health check (a busy 2-core machine makes both fail for reasons
that are not the code's), derandomised so that a failure replays on the next
run, and printing the blob that reproduces it. `HYPOTHESIS_PROFILE=explore`
draws fresh examples instead.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "clocklab",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "explore", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "clocklab"))
