"""Build aiogram's Telegram types on first use instead of all at ``import aiogram``.

Every aiogram type is declared ``defer_build=True``, yet ``aiogram/types/__init__.py``
ends by calling ``model_rebuild(_types_namespace=...)`` on all ~440 of them (to resolve
their forward references), which builds every pydantic schema, validator and serializer
at import: with aiogram 3.31 and pydantic 2.13, ``import aiogram`` holds about 165 MiB
and takes about 2 s, although the shop uses a few dozen of those types.

:func:`install` puts a one-shot import hook in front of ``import aiogram``: the package
imports unchanged except for those rebuild calls, which only note each type; once the
package is imported, each type's module gets the names its annotations need (imported
there only under ``TYPE_CHECKING``), and pydantic builds a type on its first validation,
serialization or schema access, or nested in another model (a Bot API method,
``Response[T]``). Measured: ``import aiogram`` 165 -> 59 MiB, ``import bot.app`` 179 ->
72 MiB, the bot under the benchmark's load ~111 MiB (``bench/README.md``).

It relies on private details, so it is version-guarded: pydantic 2's
``BaseModel.model_rebuild(..., _parent_namespace_depth, _types_namespace)`` and its
resolving forward references in the defining module's globals, and aiogram 3's rebuild
loop. Outside the tested versions (:data:`TESTED`) it stands aside and logs why;
``tests/bot/test_lazy_models.py`` then fails on the memory ceiling, so an upgrade cannot
bring the memory back unnoticed. It must be installed before anything imports aiogram
(``bot/__init__.py`` does it, importing nothing heavy).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import inspect
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, ForwardRef, get_args

logger = logging.getLogger(__name__)

#: (package, lowest, below) major.minor ranges this was tested with
TESTED = {"aiogram": ((3, 15), (4, 0)), "pydantic": ((2, 10), (3, 0))}
_PACKAGE = "aiogram"
_TYPES = "aiogram.types."

#: the types whose build was deferred by :func:`install` (empty when it did nothing)
deferred: list[type] = []


def _version(package: str) -> tuple[int, int]:
    major, minor, *_ = importlib.metadata.version(package).split(".")
    return int(major), int(minor)


def supported() -> str | None:
    """``None`` when the installed aiogram and pydantic are in :data:`TESTED`, else why not."""
    for package, (lowest, below) in TESTED.items():
        try:
            version = _version(package)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            return f"{package}'s version is unknown"
        if not lowest <= version < below:
            return f"{package} {version} is outside the tested {lowest}..{below}"
    from pydantic import BaseModel

    params = inspect.signature(BaseModel.model_rebuild).parameters
    if not {"_types_namespace", "_parent_namespace_depth"} <= set(params):
        return "pydantic's model_rebuild has no _types_namespace"
    return None


_NAME = re.compile(r"[A-Za-z_]\w*")


def _referenced_names(annotation: Any) -> set[str]:
    """Names a (possibly string, ``from __future__ import annotations``) annotation uses."""
    if isinstance(annotation, str):
        return set(_NAME.findall(annotation))
    if isinstance(annotation, ForwardRef):
        return set(_NAME.findall(annotation.__forward_arg__))
    names: set[str] = set()
    for argument in get_args(annotation):
        names |= _referenced_names(argument)
    return names


def _provide_names(pending: list[tuple[type, Mapping[str, Any]]]) -> None:
    """Put the names each type's annotations need (its module imports them only under
    ``TYPE_CHECKING``) into that module's globals, where pydantic looks whenever it builds
    the type: on first use, or nested in another model (a Bot API method, ``Response[T]``)."""
    for cls, namespace in pending:
        module_globals = vars(sys.modules[cls.__module__])
        for annotation in vars(cls).get("__annotations__", {}).values():
            for name in _referenced_names(annotation):
                if name in namespace and name not in module_globals:
                    module_globals[name] = namespace[name]


def _deferring_rebuild(
    build: Callable[..., bool | None], pending: list[tuple[type, Mapping[str, Any]]]
) -> Callable[..., bool | None]:
    """A ``model_rebuild`` that, for the calls aiogram's types package makes, does not build
    but notes the type and aiogram's namespace in ``pending``; any other call builds as
    before."""

    def model_rebuild(
        cls: type,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        if _types_namespace is not None and not force and cls.__module__.startswith(_TYPES):
            deferred.append(cls)
            pending.append((cls, _types_namespace))
            return None
        return build(
            cls,
            force=force,
            raise_errors=raise_errors,
            # one frame more: this wrapper stands between the caller and pydantic
            _parent_namespace_depth=_parent_namespace_depth + 1 if _parent_namespace_depth else 0,
            _types_namespace=_types_namespace,
        )

    return model_rebuild


class _DeferringLoader(importlib.abc.Loader):
    """Imports the ``aiogram`` package as it is, with the deferring ``model_rebuild`` in
    place for the duration (restored even when the import fails). The names are provided
    only after the whole package is imported: the Bot API method models, which aiogram
    builds at import, then fail cheaply on a type they cannot resolve yet (and are built
    on first use too) instead of inlining every type they mention (~25 MiB)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        from pydantic import BaseModel

        original: Any = BaseModel.__dict__["model_rebuild"]
        pending: list[tuple[type, Mapping[str, Any]]] = []
        deferring = _deferring_rebuild(original.__func__, pending)
        BaseModel.model_rebuild = classmethod(deferring)  # type: ignore[assignment,method-assign]
        try:
            self._loader.exec_module(module)
        finally:
            BaseModel.model_rebuild = original  # type: ignore[method-assign]
            _provide_names(pending)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the ``aiogram`` package the usual way and hands it to :class:`_DeferringLoader`;
    leaves ``sys.meta_path`` after that one import."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != _PACKAGE:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        reason = supported()
        if reason is not None:
            logger.warning("aiogram types are built at import (%s): ~100 MiB more", reason)
            return spec
        spec.loader = _DeferringLoader(spec.loader)
        return spec


def install() -> bool:
    """Have the coming ``import aiogram`` defer its types' builds to first use.

    Cheap (imports nothing heavy: ``python -m bot.healthcheck`` stays light). Returns
    ``False`` when aiogram is imported already (logged; nothing to do then)."""
    if _PACKAGE in sys.modules:
        if not deferred:
            logger.info("aiogram was imported before bot: its types are all built")
        return bool(deferred)
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True
