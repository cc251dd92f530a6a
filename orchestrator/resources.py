"""Files clocklab ships beside its code: the experiments, the stack template, the Dockerfile.

In a checkout they are the repository's own (`experiments/`, `compose/`,
`Dockerfile`); a wheel carries copies under `orchestrator/shipped/` (setup.py
puts them there), so an installed clocklab finds them too.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ClocklabError

PACKAGE = Path(__file__).resolve().parent
SHIPPED = PACKAGE / "shipped"  # in a wheel
CHECKOUT = PACKAGE.parent  # in a source checkout or an editable install
SHIPPED_NAMES = ("experiments", "compose", "Dockerfile")


def shipped(name: str) -> Path:
    """The shipped file or folder `name` (one of SHIPPED_NAMES)."""
    for root in (SHIPPED, CHECKOUT):
        if (root / name).exists():
            return root / name
    raise ClocklabError(
        f"this clocklab installation lacks its {name!r} (looked in {SHIPPED} and {CHECKOUT}); "
        "reinstall it from a wheel built with `pip wheel .`"
    )
