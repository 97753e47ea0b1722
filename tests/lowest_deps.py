"""Print pip constraints pinning every dependency to its lowest allowed version.

``make lowest`` installs the project with them into a scratch venv and runs the fast tests
(everything but the PostgreSQL ones): the lower bounds in pyproject.toml are then known to
work, not hoped to. Extras named on the command line are included (default: dev).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def lowest(requirements: list[str]) -> list[str]:
    """``name==version`` for each requirement with a ``>=`` lower bound."""
    pins = []
    for text in requirements:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                pins.append(f"{requirement.name}=={spec.version}")
    return pins


def main(extras: list[str]) -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras or ["dev"]:
        requirements += project["optional-dependencies"][extra]
    sys.stdout.write("\n".join(dict.fromkeys(lowest(requirements))) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
