"""The wheel carries the experiments, the stack template and the image recipe.

They stay at the top of the repository (experiments/, compose/, Dockerfile);
the build copies them into orchestrator/shipped/ inside the wheel, where
orchestrator.resources finds them once clocklab is installed.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("experiments", "compose", "Dockerfile")  # = orchestrator.resources.SHIPPED_NAMES


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "orchestrator" / "shipped"
        for name in SHIPPED:
            source = Path(name)
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True)
            elif source.is_file():  # absent from the image build's trimmed copy
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithShippedFiles})
