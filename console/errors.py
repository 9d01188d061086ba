"""Errors raised by services; views turn them into clear messages."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; ``message`` is shown to the user as is."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInput(ServiceError):
    pass


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class Busy(ServiceError):
    """The target already has a pending or running operation."""

    status_code = 409

    def __init__(self, message: str, *, operation_id: int | None = None) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class Conflict(ServiceError):
    """The target is in a state that does not allow the action (running, stopped, has dependants)."""

    status_code = 409
