"""Reading a toxic's attributes, with errors that name the attribute at fault.

The host hands attributes as (name, value) pairs of the contract's `value`
variant; an `Err` raised from `validate` or `Fault.create` is the API
caller's 400, its text the message.
"""

from componentize_py_types import Err
from wit_world.imports import types


def lookup(attributes, name):
    """The value given for `name`, or None."""
    for key, value in attributes:
        if key == name:
            return value
    return None


def non_negative(attributes, name, default, unit):
    """A whole number >= 0 (`unit` names it in errors), or `default`."""
    value = lookup(attributes, name)
    if value is None:
        return default
    if not isinstance(value, types.Value_Integer) or value.value < 0:
        got = getattr(value, "value", value)
        raise Err(f"{name}: expected a non-negative integer ({unit}), got {got!r}")
    return value.value


def text(attributes, name, default):
    """A string, or `default`."""
    value = lookup(attributes, name)
    if value is None:
        return default
    if not isinstance(value, types.Value_Text):
        raise Err(f"{name}: expected a string, got {value.value!r}")
    return value.value


def integer_spec(name, default, summary):
    return types.AttributeSpec(name, types.ValueType.INTEGER, types.Value_Integer(default), summary)


def text_spec(name, default, summary):
    return types.AttributeSpec(name, types.ValueType.TEXT, types.Value_Text(default), summary)


# What a Python plugin needs of faultgate beyond its defaults (16 MiB of
# memory per instance, 100 ms a call): the interpreter takes about 12 MiB,
# and making an instance (the interpreter's memory set up, then `create`)
# can pass 100 ms on a busy machine. Names starting with '@' are read by
# faultgate as declarations, not offered as attributes.
RUNTIME_NEEDS = [
    integer_spec("@memory-mib", 32, "the memory one instance needs, in MiB"),
    integer_spec("@deadline-ms", 1000, "the time one call may need, in milliseconds"),
]
