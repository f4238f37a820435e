"""Records built from trusted dicts without validation: the one module that writes pydantic's private attributes.

Building 10,000 records through pydantic validation takes about as long as parsing the JSON. For a file that
``store`` sealed (written from validated records, unchanged since), ``build`` makes each record the way pydantic's
``model_construct`` does, without its per-field Python loop: it sets the instance's ``__dict__`` to the parsed dict and
fills the other instance slots of ``BaseModel`` (``__pydantic_fields_set__``, ``__pydantic_extra__``,
``__pydantic_private__``) itself. The result equals ``cls.model_validate(data)`` (the public path) and dumps the same.

Which classes qualify (``qualifies``) is read from each class's fields, so subclasses (a record extending a base
model) are handled like any other model: fields whose JSON values are what pydantic would build (str, int, bool,
None, float, string literals, lists and str-keyed dicts of those) and nested models (``Model``, ``Model | None`` or
``list[Model]``, ``list[Model] | None``) that qualify themselves. A class with validators, serializers, aliases, ``model_post_init``, private
attributes, extra fields or a root is validated; so is a dict whose keys are not exactly the class's fields (an older
or newer layout), except for keys left out while None (a key added later, ``exclude_if``: filled with None, as
validation does).

The public path instead:

- ``EMBODIED_AI_NO_FASTPATH=1`` in the environment, or ``build(..., fast=False)``: every record is validated
  (``model_validate``), the public API.
- A pydantic whose ``BaseModel`` no longer has exactly the instance slots above (a release that renamed, added or
  dropped one): every record is validated, slower but never wrong. Supporting such a release is a change to this file
  only.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from types import MemberDescriptorType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel

NO_FASTPATH_ENV = "EMBODIED_AI_NO_FASTPATH"
# the instance state of a pydantic 2 model, as BaseModel.__slots__ declares it; build writes each of these
_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")

M = TypeVar("M", bound=BaseModel)
# a class's plan: (its field names, the fields-set object shared by its instances, its nested-model fields as
# (name, is a list, model class), the fields a stored dict may leave out: None by default and left out of the JSON
# while None, ``exclude_if``); None where the class does not qualify
_Plan = tuple[frozenset[str], set[str], list[tuple[str, bool, type[BaseModel]]], frozenset[str]]
_plans: dict[type, _Plan | None] = {}
_JSON_SCALARS = (str, int, bool, type(None))


def fastpath_enabled() -> bool:
    """False when ``$EMBODIED_AI_NO_FASTPATH`` is set (to anything but ``0`` or nothing)."""
    return os.environ.get(NO_FASTPATH_ENV, "").strip() in ("", "0")


def layout_known() -> bool:
    """Whether pydantic's ``BaseModel`` keeps an instance's state in exactly the slots ``build`` writes."""
    slots = getattr(BaseModel, "__slots__", None)
    if isinstance(slots, str) or not isinstance(slots, (tuple, list)) or sorted(slots) != sorted(_SLOTS):
        return False
    return all(isinstance(vars(BaseModel).get(name), MemberDescriptorType) for name in _SLOTS[1:])


def build(cls: type[M], data: dict[str, Any], *, fast: bool | None = None) -> M:
    """``data`` (parsed from JSON that a validated ``cls`` was dumped to) as an instance of ``cls``: built directly
    when the fast path is on (``fast``, else the environment), pydantic's layout is the known one and ``cls``
    qualifies; else ``cls.model_validate(data)``. The nested dicts of ``data`` may be replaced by the models built
    from them. Raises ValidationError as ``model_validate`` does."""
    return build_many(cls, (data,), fast=fast)[0]


def build_many(cls: type[M], items: Iterable[dict[str, Any]], *, fast: bool | None = None) -> list[M]:
    """``build`` for each of ``items``, deciding the path once."""
    if fast is None:
        fast = fastpath_enabled()
    if fast and layout_known():
        return [_construct(cls, data) for data in items]
    return [cls.model_validate(data) for data in items]


def qualifies(cls: type[BaseModel]) -> bool:
    """Whether ``build`` makes instances of ``cls`` (and its nested models) without validating them."""
    return _plan(cls) is not None


def _constraint_only(metadata: Iterable[Any]) -> bool:
    """Whether ``Annotated`` metadata only constrain values (``ge=0``, a pattern ...) and never change them: a value
    that passed them once, when the record was validated and written, is used as it is."""
    from annotated_types import BaseMetadata
    from pydantic.fields import FieldInfo

    for item in metadata:
        if isinstance(item, BaseMetadata):
            continue
        if isinstance(item, FieldInfo) and all(isinstance(m, BaseMetadata) for m in item.metadata) \
                and item.alias is None and item.validation_alias is None:
            continue
        return False
    return True


def _json_native(annotation: Any) -> bool:
    """True when JSON's own values are what pydantic would build for this annotation (no models, tuples, floats
    that may arrive as ints, dates ...), so a parsed value can be used as it is. Constraints (``Annotated[int,
    Field(ge=0)]``) do not change values, so they are looked through."""
    if annotation in _JSON_SCALARS or annotation is Any:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _constraint_only(args[1:]) and _json_native(args[0])
    if origin is list:
        return all(_json_native(a) for a in args)
    if origin is dict:
        return len(args) == 2 and args[0] is str and _json_native(args[1])
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (Union, UnionType):
        return all(_json_native(a) for a in args)
    return False


def _model_class(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _optional_model(annotation: Any) -> type[BaseModel] | None:
    """``M`` for ``M | None`` (``Optional[M]``), else None."""
    if get_origin(annotation) not in (Union, UnionType):
        return None
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) != 1 or len(get_args(annotation)) != 2:
        return None
    return _model_class(args[0])


def _model_list(annotation: Any) -> type[BaseModel] | None:
    """``M`` for ``list[M]`` or ``list[M] | None``, else None."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(get_args(annotation)) != 2:
            return None
        annotation = args[0]
    args = get_args(annotation)
    return _model_class(args[0]) if get_origin(annotation) is list and len(args) == 1 else None


def _plain_class(cls: type[BaseModel]) -> bool:
    """No hook that validation would run or that keeps state outside ``__dict__`` (validators, serializers,
    ``model_post_init``, private attributes, extra fields, a root model, aliases)."""
    decorators = getattr(cls, "__pydantic_decorators__", None)
    hooks = ("validators", "field_validators", "root_validators", "model_validators", "field_serializers",
             "model_serializers", "computed_fields")
    return (decorators is not None and not any(getattr(decorators, name, None) for name in hooks)
            and cls.model_config.get("extra") != "allow" and not cls.__private_attributes__
            and not getattr(cls, "__pydantic_root_model__", False)
            and getattr(cls, "__pydantic_post_init__", None) is None
            and all(f.alias in (None, name) and f.validation_alias in (None, name)
                    for name, f in cls.model_fields.items()))


def _plan(cls: type[BaseModel]) -> _Plan | None:
    if cls in _plans:
        return _plans[cls]
    _plans[cls] = None  # a model that nests itself is validated
    nested: list[tuple[str, bool, type[BaseModel]]] = []
    ok = _plain_class(cls)
    for name, field in cls.model_fields.items():
        if not ok:
            break
        ann = field.annotation
        if (sub := _model_class(ann) or _optional_model(ann)) is not None:  # Model, or Model | None
            nested.append((name, False, sub))
            ok = _plan(sub) is not None
        elif (sub := _model_list(ann)) is not None:  # list[Model], or list[Model] | None
            nested.append((name, True, sub))
            ok = _plan(sub) is not None
        elif ann is float or ann == (float | None):
            pass  # written by pydantic as a JSON float, so it parses back as one
        else:
            ok = _json_native(ann)
    keys = frozenset(cls.model_fields)
    omissible = frozenset(name for name, f in cls.model_fields.items()
                          if getattr(f, "exclude_if", None) is not None and f.default is None)
    _plans[cls] = (keys, set(keys), nested, omissible) if ok else None
    return _plans[cls]


def _construct(cls: type[M], data: dict[str, Any]) -> M:
    plan = _plan(cls)
    if plan is None:
        return cls.model_validate(data)
    fields_set = plan[1]
    if data.keys() != plan[0]:
        missing = plan[0] - data.keys()
        if not missing <= plan[3] or not data.keys() <= plan[0]:
            return cls.model_validate(data)
        for name in missing:  # a key left out while None: what validation would fill in, not set
            data[name] = None
        fields_set = plan[1] - missing
    for name, many, sub in plan[2]:
        value = data[name]
        if many and value is not None:
            data[name] = [_construct(sub, item) for item in value]
        elif value is not None:
            data[name] = _construct(sub, value)
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", data)
    object.__setattr__(obj, "__pydantic_fields_set__", fields_set)
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj
