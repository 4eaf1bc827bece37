"""Profile a block of code: ``with obs.profile("name"):`` and ``@obs.profiled``.

For scripts and background jobs. Each run writes ``<name>-<timestamp>.speedscope.json`` and
``.html`` under ``OBS_PROFILE_DIR`` (default ``./profiles``), like a profiled request. A block
inside another profile (a nested block or a profiled request) is part of the outer profile and
writes nothing of its own.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload

from obs.profiling.session import with_records, write_session
from obs.profiling.storage import safe_stem, unique_stem
from obs.selfreport import report_internal_error

F = TypeVar("F", bound=Callable[..., Any])

COMPONENT = "block profiling"


class BlockProfile:
    """A context manager that profiles its block; :attr:`html_path` is set on exit."""

    def __init__(
        self,
        name: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        max_duration: float = 3600.0,
        max_files: int = 50,
    ) -> None:
        if directory is None:
            from obs.config import Settings

            directory = Settings.from_env().profile_dir
        self.name = name
        self.directory = Path(directory)
        self.max_duration = max_duration
        self.max_files = max_files
        self.html_path: Path | None = None
        self.speedscope_path: Path | None = None
        self._profiler: Any = None

    def __enter__(self) -> BlockProfile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        try:
            profiler.start(target_description=f"block {self.name}")
        except RuntimeError:
            return self  # already inside a profile, which covers this block
        self._profiler = profiler
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is None:
            return
        try:
            session = with_records(profiler.stop(), [], self.max_duration)
            stem = f"{safe_stem(self.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
            stem = unique_stem(self.directory, stem)
            self.html_path = write_session(session, self.directory, stem, self.max_files)
            self.speedscope_path = self.html_path.with_name(stem + ".speedscope.json")
        except Exception as error:
            report_internal_error(COMPONENT, error)


def profile(
    name: str,
    *,
    directory: str | os.PathLike[str] | None = None,
    max_duration: float = 3600.0,
    max_files: int = 50,
) -> BlockProfile:
    """Profile the ``with`` block; outputs are named after *name*."""
    return BlockProfile(name, directory=directory, max_duration=max_duration, max_files=max_files)


@overload
def profiled(func: F, /) -> F: ...
@overload
def profiled(
    *, name: str | None = None, directory: str | os.PathLike[str] | None = None
) -> Callable[[F], F]: ...


def profiled(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    directory: str | os.PathLike[str] | None = None,
) -> F | Callable[[F], F]:
    """Profile every call of a function (sync or async): ``@profiled`` or ``@profiled(name=...)``."""

    def decorate(fn: F) -> F:
        label = name or fn.__qualname__
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with profile(label, directory=directory):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with profile(label, directory=directory):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if func is None else decorate(func)
