"""The one context-manager shape for objects that hold a resource until ``close()`` (a client's
connections, an open archive, a database): ``with Thing(...) as t:`` closes ``t`` when the block
ends, however it ends."""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """Base class: ``__enter__`` returns the object, ``__exit__`` calls its ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
