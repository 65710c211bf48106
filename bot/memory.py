"""Give memory freed by a big, passing job back to the system: see :mod:`services.memory`
(there so that services, which do such jobs too, can call it)."""

from services.memory import release_freed_memory

__all__ = ["release_freed_memory"]
