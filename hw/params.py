"""Parameter handling shared by every hw component."""

from __future__ import annotations

__all__ = ["silence_on_error"]


def silence_on_error(init):
    """Decorator for component ``__init__``: a rejected parameter must not also warn that the
    half-built elaboratable was never used."""

    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except Exception:
            self._MustUse__silence = True
            raise

    wrapper.__doc__, wrapper.__name__ = init.__doc__, init.__name__
    return wrapper
