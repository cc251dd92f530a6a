"""The VM image: its base (base.py), the wheels it installs (wheels.py), the build (build.py)."""

from orchestrator.image.build import BASE_LABEL, IMAGE, SOURCE_LABEL, ensure_image, source_digest

__all__ = ["BASE_LABEL", "IMAGE", "SOURCE_LABEL", "ensure_image", "source_digest"]
