from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MatchKeyDef(_message.Message):
    __slots__ = ("name", "fields")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("protocols", "match_keys", "key_spec_fingerprint", "norm_version", "key_epoch", "max_request_size", "max_chunk_elements", "reveal", "setup_size", "setup_id", "wire_version", "norm_conformance_digest", "norm_libraries", "paillier_choices")
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    MATCH_KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_SPEC_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NORM_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    SETUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    SETUP_ID_FIELD_NUMBER: _ClassVar[int]
    WIRE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NORM_CONFORMANCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    NORM_LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_CHOICES_FIELD_NUMBER: _ClassVar[int]
    protocols: _containers.RepeatedScalarFieldContainer[str]
    match_keys: _containers.RepeatedCompositeFieldContainer[MatchKeyDef]
    key_spec_fingerprint: str
    norm_version: str
    key_epoch: str
    max_request_size: int
    max_chunk_elements: int
    reveal: str
    setup_size: int
    setup_id: str
    wire_version: int
    norm_conformance_digest: str
    norm_libraries: str
    paillier_choices: int
    def __init__(self, protocols: _Optional[_Iterable[str]] = ..., match_keys: _Optional[_Iterable[_Union[MatchKeyDef, _Mapping]]] = ..., key_spec_fingerprint: _Optional[str] = ..., norm_version: _Optional[str] = ..., key_epoch: _Optional[str] = ..., max_request_size: _Optional[int] = ..., max_chunk_elements: _Optional[int] = ..., reveal: _Optional[str] = ..., setup_size: _Optional[int] = ..., setup_id: _Optional[str] = ..., wire_version: _Optional[int] = ..., norm_conformance_digest: _Optional[str] = ..., norm_libraries: _Optional[str] = ..., paillier_choices: _Optional[int] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol", "key_spec_fingerprint", "request_size", "reveal", "cached_setup_id", "paillier", "wire_version", "norm_conformance_digest", "norm_libraries")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_SPEC_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SIZE_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    CACHED_SETUP_ID_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_FIELD_NUMBER: _ClassVar[int]
    WIRE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NORM_CONFORMANCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    NORM_LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    key_spec_fingerprint: str
    request_size: int
    reveal: str
    cached_setup_id: str
    paillier: PaillierParams
    wire_version: int
    norm_conformance_digest: str
    norm_libraries: str
    def __init__(self, protocol: _Optional[str] = ..., key_spec_fingerprint: _Optional[str] = ..., request_size: _Optional[int] = ..., reveal: _Optional[str] = ..., cached_setup_id: _Optional[str] = ..., paillier: _Optional[_Union[PaillierParams, _Mapping]] = ..., wire_version: _Optional[int] = ..., norm_conformance_digest: _Optional[str] = ..., norm_libraries: _Optional[str] = ...) -> None: ...

class PaillierParams(_message.Message):
    __slots__ = ("n", "bins", "degree", "bin_seed", "modulus_proof", "choices")
    N_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    DEGREE_FIELD_NUMBER: _ClassVar[int]
    BIN_SEED_FIELD_NUMBER: _ClassVar[int]
    MODULUS_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    n: bytes
    bins: int
    degree: int
    bin_seed: int
    modulus_proof: bytes
    choices: int
    def __init__(self, n: _Optional[bytes] = ..., bins: _Optional[int] = ..., degree: _Optional[int] = ..., bin_seed: _Optional[int] = ..., modulus_proof: _Optional[bytes] = ..., choices: _Optional[int] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("session_id", "key_epoch", "setup_size", "tag_length", "max_chunk_elements", "reveal", "setup_id", "setup_skipped")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SETUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    TAG_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    SETUP_ID_FIELD_NUMBER: _ClassVar[int]
    SETUP_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    key_epoch: str
    setup_size: int
    tag_length: int
    max_chunk_elements: int
    reveal: str
    setup_id: str
    setup_skipped: bool
    def __init__(self, session_id: _Optional[str] = ..., key_epoch: _Optional[str] = ..., setup_size: _Optional[int] = ..., tag_length: _Optional[int] = ..., max_chunk_elements: _Optional[int] = ..., reveal: _Optional[str] = ..., setup_id: _Optional[str] = ..., setup_skipped: _Optional[bool] = ...) -> None: ...

class SetupChunk(_message.Message):
    __slots__ = ("tags", "labels")
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[bytes]
    labels: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tags: _Optional[_Iterable[bytes]] = ..., labels: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ElementChunk(_message.Message):
    __slots__ = ("offset", "elements")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    elements: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, offset: _Optional[int] = ..., elements: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Finish(_message.Message):
    __slots__ = ("elements_sent",)
    ELEMENTS_SENT_FIELD_NUMBER: _ClassVar[int]
    elements_sent: int
    def __init__(self, elements_sent: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("elements_evaluated", "hit_count")
    ELEMENTS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    HIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    elements_evaluated: int
    hit_count: int
    def __init__(self, elements_evaluated: _Optional[int] = ..., hit_count: _Optional[int] = ...) -> None: ...

class HitReport(_message.Message):
    __slots__ = ("elements", "indices", "proof")
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    elements: _containers.RepeatedScalarFieldContainer[bytes]
    indices: _containers.RepeatedScalarFieldContainer[int]
    proof: bytes
    def __init__(self, elements: _Optional[_Iterable[bytes]] = ..., indices: _Optional[_Iterable[int]] = ..., proof: _Optional[bytes] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("hello", "blinded", "finish", "hit_report", "reblinded")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    HIT_REPORT_FIELD_NUMBER: _ClassVar[int]
    REBLINDED_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    blinded: ElementChunk
    finish: Finish
    hit_report: HitReport
    reblinded: ElementChunk
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., blinded: _Optional[_Union[ElementChunk, _Mapping]] = ..., finish: _Optional[_Union[Finish, _Mapping]] = ..., hit_report: _Optional[_Union[HitReport, _Mapping]] = ..., reblinded: _Optional[_Union[ElementChunk, _Mapping]] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("accepted", "setup", "evaluated", "summary")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SETUP_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    accepted: Accepted
    setup: SetupChunk
    evaluated: ElementChunk
    summary: Summary
    def __init__(self, accepted: _Optional[_Union[Accepted, _Mapping]] = ..., setup: _Optional[_Union[SetupChunk, _Mapping]] = ..., evaluated: _Optional[_Union[ElementChunk, _Mapping]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...
