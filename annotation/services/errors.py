"""The error every annotation service raises for bad input or a request that does not fit
the state."""

from __future__ import annotations


class TaskError(Exception):
    """Bad input or a request that does not fit the state; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status
