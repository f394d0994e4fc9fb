"""A RemoteExecutionContext read in one typed pass, its column values left as raw JSON until needed.

A plug-in message carries every column of the row twice (Target and the post image), and the flows
read a few of them. Parsed into Python objects, every value costs the same whether or not a map reads
it, so a 200-column message cost 6.5 times a 10-column one. Here the structure is decoded by msgspec
against the context's shape and each value stays a `msgspec.Raw` slice of the body; the decoder turns
into Python values only the columns it keeps (shared.decoding.dataverse.normalize_value decodes a Raw).

Only the standard shape is read this way. A message of any other shape (a plain object where a
collection belongs, a number where text belongs) fails the typed pass and is read by the generic
parser instead, which tolerates what it can and reports the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from shared.decoding.context import RemoteExecutionContext, created_on, lower_id
from shared.jsonio import TOO_DEEP_REASON, UntrustedJsonError, decode_fragment


# Both fields required: a default made msgspec fill in defaults for every pair it read, 3% of a wide
# row's decoding; a pair without its value is rare enough to leave to the generic parser.
class _Pair(msgspec.Struct, gc=False):
    key: str
    value: msgspec.Raw


class RawPairs(list[_Pair]):
    """A DataContract collection whose values are still raw JSON."""


class RawValues(dict[str, msgspec.Raw]):
    """Column values still raw JSON, by column name."""


class _Key(msgspec.Struct, gc=False):
    key: str


_PAIRS = msgspec.json.Decoder(list[_Pair])
_KEYS = msgspec.json.Decoder(list[_Key])
_UNREAD: Any = object()


class LazyPairs:
    """An input parameter's collection (Target's columns), left unread until a caller asks for it.

    Next to the image register-steps registers, Target's values add nothing (shared.decoding.images)
    and its names matter only to an Update: reading its pairs cost a wide Create more than the rest
    of the message. Read, it is what the typed pass would have made of it; a collection of another
    shape is parsed generically, as the generic parser would have."""

    __slots__ = ("_read", "raw")

    def __init__(self, raw: msgspec.Raw) -> None:
        self.raw = raw
        self._read: Any = _UNREAD

    def pairs(self) -> Any:
        """RawPairs, or the collection as plain JSON when it is not a list of key/value pairs. Read
        once: an Update beside another image merges Target's values and then asks for its names."""
        if self._read is _UNREAD:
            self._read = self._decoded()
        return self._read

    def _decoded(self) -> Any:
        try:
            return RawPairs(_PAIRS.decode(self.raw))
        except msgspec.DecodeError:  # ValidationError too
            return decode_fragment(self.raw)
        except RecursionError:
            raise UntrustedJsonError(TOO_DEEP_REASON) from None

    def names(self) -> list[str] | None:
        """The pairs' keys (from the pairs if read already, else with their values skipped); None for
        a collection of another shape."""
        if self._read is not _UNREAD:
            return [pair.key for pair in self._read] if type(self._read) is RawPairs else None
        try:
            return [pair.key for pair in _KEYS.decode(self.raw)]
        except msgspec.DecodeError:
            return None
        except RecursionError:
            raise UntrustedJsonError(TOO_DEEP_REASON) from None


def read_pairs(attributes: Any) -> Any:
    """A collection as the typed or the generic pass made it, a lazy one read now."""
    return attributes.pairs() if type(attributes) is LazyPairs else attributes


def raw_values(collections: Iterable[RawPairs], columns: frozenset[str] | None) -> RawValues:
    """The collections' values by name, later ones winning, keeping only `columns` (None: all)."""
    merged = RawValues()
    for pairs in collections:
        if columns is None:
            merged.update((pair.key, pair.value) for pair in pairs)
            continue
        # A plain loop: attribute reads of a struct and a set's membership test are specialized by the
        # interpreter, and timed on an msdyn_actual it beat generators, compress and attrgetter maps.
        for pair in pairs:
            if pair.key in columns:
                merged[pair.key] = pair.value
    return merged


# gc=False: these hold only strings and raw slices, never a cycle, and a wide row has hundreds of them.
class _Entity(msgspec.Struct, gc=False):
    Attributes: list[_Pair] | msgspec.UnsetType = msgspec.UNSET
    LogicalName: str | msgspec.UnsetType | None = msgspec.UNSET
    Id: str | None = None
    RowVersion: str | None = None
    Name: str | msgspec.UnsetType | None = msgspec.UNSET


class _LazyEntity(_Entity, gc=False):
    Attributes: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]


class _Image(msgspec.Struct, gc=False):
    key: str
    value: _Entity | None = None


class _Parameter(msgspec.Struct, gc=False):
    """An input parameter read in the same pass as the rest: Target is an entity, its columns left
    as one raw slice (LazyPairs), the others are flags and names. A parameter of any other kind (a
    number, a list) sends the message to the generic parser, which keeps it exactly."""

    key: str
    value: _LazyEntity | str | bool | None = None


class _Context(msgspec.Struct):
    MessageName: str
    PrimaryEntityName: str | None = None
    PrimaryEntityId: str | None = None
    InputParameters: list[_Parameter] | msgspec.UnsetType = msgspec.UNSET
    OutputParameters: list[_Pair] | None = None
    PreEntityImages: list[_Image] | None = None
    PostEntityImages: list[_Image] | None = None
    InitiatingUserId: str | None = None
    InitiatingUserAzureActiveDirectoryObjectId: str | None = None
    CorrelationId: str | None = None
    OperationId: str | None = None
    OperationCreatedOn: str | None = None
    Depth: int | None = None


_CONTEXT = msgspec.json.Decoder(_Context)


class NotStandardShape(Exception):
    """The body is JSON but not the standard context shape: the generic parser reads it."""


def _entity(entity: _Entity) -> dict[str, Any]:
    """The entity as the generic decoder's dict, with the keys the message really had."""
    result: dict[str, Any] = {"Id": entity.Id, "RowVersion": entity.RowVersion}
    attributes = entity.Attributes
    if type(attributes) is msgspec.Raw:
        result["Attributes"] = LazyPairs(attributes)
    elif attributes is not msgspec.UNSET:
        result["Attributes"] = RawPairs(attributes)
    if entity.LogicalName is not msgspec.UNSET:
        result["LogicalName"] = entity.LogicalName
    if entity.Name is not msgspec.UNSET:
        result["Name"] = entity.Name
    return result


# The collections come back as the dicts the generic parser's `_pairs` makes of them (a name's
# last pair winning, as there): building a {"key", "value"} dict per pair only for `_pairs` to take
# it apart again cost more than the rest of the envelope.
def _images(images: list[_Image] | None) -> dict[str, Any]:
    return {image.key: None if image.value is None else _entity(image.value) for image in images or []}


def _parameters(pairs: list[_Pair]) -> dict[str, Any]:
    """Output parameters are few and small: decoded whole, as the generic parser would."""
    return {pair.key: decode_fragment(pair.value) for pair in pairs}


def _inputs(parameters: list[_Parameter]) -> dict[str, Any]:
    return {
        parameter.key: _entity(parameter.value) if type(parameter.value) is _LazyEntity else parameter.value
        for parameter in parameters
    }


def read_context(body: bytes) -> RemoteExecutionContext:
    """The context, its column values still raw: the generic parser's result without the JSON object
    it is made from, which cost as much again to build and read back. Raises NotStandardShape for any
    other shape, and UntrustedJsonError for a value outside what a real message holds."""
    try:
        context = _CONTEXT.decode(body)
    except RecursionError:
        raise UntrustedJsonError(TOO_DEEP_REASON) from None
    except msgspec.DecodeError:  # ValidationError too: the body is not the standard shape
        raise NotStandardShape from None
    inputs = context.InputParameters
    return RemoteExecutionContext(
        message_name=context.MessageName,
        primary_entity_name=(context.PrimaryEntityName or "").lower(),
        primary_entity_id=context.PrimaryEntityId.lower() if context.PrimaryEntityId else None,
        input_parameters=None if inputs is msgspec.UNSET else _inputs(inputs),
        output_parameters=_parameters(context.OutputParameters or []),
        pre_images=_images(context.PreEntityImages),
        post_images=_images(context.PostEntityImages),
        initiating_user_id=lower_id(context.InitiatingUserId),
        initiating_aad_object_id=lower_id(context.InitiatingUserAzureActiveDirectoryObjectId),
        correlation_id=lower_id(context.CorrelationId),
        operation_id=lower_id(context.OperationId),
        operation_created_on=created_on(context.OperationCreatedOn),
        depth=context.Depth,
    )
