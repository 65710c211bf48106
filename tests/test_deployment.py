"""Deployment files: the example settings keep the database on the Docker volume, and the
lock files pin what the tests ran with."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    assert "--hash=sha256:" in text
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_example_env_leaves_the_database_path_to_the_image() -> None:
    """The image puts the database on the /data volume (DATABASE_PATH=/data/...); an
    example .env that sets it sends it off the volume, where the shop user cannot write."""
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if line.strip().startswith("DATABASE_PATH")]
    assert "DATABASE_PATH=/data/shop.sqlite3" in (ROOT / "Dockerfile").read_text()


def test_the_locks_pin_every_dependency_within_its_range() -> None:
    project = _pyproject()["project"]
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    for lock, requirements in (
        (runtime, project["dependencies"]),
        (dev, project["dependencies"] + project["optional-dependencies"]["dev"]),
    ):
        for line in requirements:
            requirement = Requirement(line)
            pinned = lock.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{requirement.name} is not in the lock: run make lock"
            assert requirement.specifier.contains(pinned), f"{requirement} vs lock {pinned}"
    assert {name: dev[name] for name in runtime} == runtime  # tests run what the image ships


def test_the_tests_run_with_the_locked_versions() -> None:
    for name, version in _pins("requirements-dev.lock").items():
        assert metadata.version(name) == version, f"{name}: make test installs from the lock"


def test_the_image_and_make_install_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps" in dockerfile
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps" in makefile


def _setting_names(model: type, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    names = []
    for name, field in model.model_fields.items():
        full = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _setting_names(annotation, full + "__")
        else:
            names.append(full)
    return names


def test_the_readme_configuration_table_lists_every_setting() -> None:
    from bot.settings import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :].split("\n\n")[2]
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]}
    names = _setting_names(Settings)
    assert "LOG_LEVEL" in names
    assert [name for name in names if name not in rows] == []
