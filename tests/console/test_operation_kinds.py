"""Operation kinds are declared per app as TextChoices, and each has exactly one handler."""

from __future__ import annotations

import pytest
from django.db import models

# The handler modules register themselves on import (each app's ready() imports them too).
import containers.handlers
import containers.libvirt.handlers
import networks.handlers  # noqa: F401
import storage.handlers  # noqa: F401
from console.tasks import HANDLERS, operation_handler
from containers.choices import ContainerOp, DomainOp
from networks.choices import NetworkOp
from storage.choices import StorageOp

KINDS = [kind for choices in (ContainerOp, DomainOp, StorageOp, NetworkOp) for kind in choices]


def test_every_kind_has_a_handler_and_every_handler_a_kind():
    assert sorted(HANDLERS) == sorted(KINDS)
    assert len(set(KINDS)) == len(KINDS)  # no kind declared twice, in two apps


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_each_handler_lives_in_its_apps_handler_module(kind):
    module = HANDLERS[kind].__module__
    app = type(kind).__module__.split(".")[0]
    assert module.startswith(app + "."), (kind, module)


def test_a_second_handler_for_a_kind_is_refused():
    with pytest.raises(ValueError, match="has a handler already"):

        @operation_handler(ContainerOp.START)
        def another_start(op, runner):
            return None

    assert HANDLERS[ContainerOp.START] is containers.handlers.start


def test_a_bare_string_kind_is_refused():
    with pytest.raises(TypeError, match="TextChoices"):
        operation_handler("container.start")


def test_kinds_are_text_choices():
    assert all(isinstance(kind, models.TextChoices) for kind in KINDS)
