"""The three dependency files tell the same story: pyproject ranges, pins, conda env."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch-cpu": "torch", "pytorch": "torch"}


def pyproject_requirements():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def pins():
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.lower().replace("_", "-")] = version
    return out


def conda_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, _, version = dep.partition("=")
            out[CONDA_TO_PYPI.get(name, name).lower()] = version
    return out


def test_environment_yml_names_the_same_packages_as_pyproject():
    conda = conda_packages()
    conda.pop("python"), conda.pop("pip")
    assert set(conda) == set(pyproject_requirements())


def test_conda_versions_equal_the_pins_and_satisfy_the_ranges():
    reqs, pinned = pyproject_requirements(), pins()
    for name, version in conda_packages().items():
        if name in ("python", "pip"):
            continue
        assert pinned[name] == version, f"{name}: environment.yml {version} != constraints {pinned[name]}"
        assert Version(version) in reqs[name].specifier, f"{name} {version} outside {reqs[name]}"


def test_every_direct_dependency_is_pinned_and_torch_is_the_cpu_release():
    pinned = pins()
    for name, req in pyproject_requirements().items():
        assert name in pinned, f"{name} is not pinned in constraints.txt"
        assert Version(pinned[name]) in req.specifier, f"pin {name}=={pinned[name]} outside {req}"
    assert pinned["torch"] == "2.13.0"
    assert not any(name.startswith("nvidia") for name in pinned), "a CUDA package slipped into the pins"


def test_python_range():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert re.fullmatch(r">=3\.10,<3\.14", requires)
