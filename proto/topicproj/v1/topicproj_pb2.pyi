from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Item(_message.Message):
    __slots__ = ("id", "keywords", "weights")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    keywords: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., keywords: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class ProjectRequest(_message.Message):
    __slots__ = ("items", "top_k", "omit_dense", "model_version", "dense_bytes", "packed_keywords", "packed_counts", "packed_weights", "columnar")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    OMIT_DENSE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DENSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PACKED_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    PACKED_COUNTS_FIELD_NUMBER: _ClassVar[int]
    PACKED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    COLUMNAR_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    top_k: int
    omit_dense: bool
    model_version: str
    dense_bytes: bool
    packed_keywords: str
    packed_counts: _containers.RepeatedScalarFieldContainer[int]
    packed_weights: _containers.RepeatedScalarFieldContainer[float]
    columnar: bool
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., top_k: _Optional[int] = ..., omit_dense: _Optional[bool] = ..., model_version: _Optional[str] = ..., dense_bytes: _Optional[bool] = ..., packed_keywords: _Optional[str] = ..., packed_counts: _Optional[_Iterable[int]] = ..., packed_weights: _Optional[_Iterable[float]] = ..., columnar: _Optional[bool] = ...) -> None: ...

class TopicScore(_message.Message):
    __slots__ = ("topic", "score")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    topic: int
    score: float
    def __init__(self, topic: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("id", "topics", "top", "known_keywords", "unknown_keywords", "active_topics")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    KNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    id: str
    topics: _containers.RepeatedScalarFieldContainer[float]
    top: _containers.RepeatedCompositeFieldContainer[TopicScore]
    known_keywords: int
    unknown_keywords: int
    active_topics: int
    def __init__(self, id: _Optional[str] = ..., topics: _Optional[_Iterable[float]] = ..., top: _Optional[_Iterable[_Union[TopicScore, _Mapping]]] = ..., known_keywords: _Optional[int] = ..., unknown_keywords: _Optional[int] = ..., active_topics: _Optional[int] = ...) -> None: ...

class ProjectResponse(_message.Message):
    __slots__ = ("model_version", "projections", "dense", "topics", "known_keywords", "unknown_keywords", "active_topics", "top_counts", "top_topics", "top_scores")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOP_TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_SCORES_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    projections: _containers.RepeatedCompositeFieldContainer[Projection]
    dense: bytes
    topics: int
    known_keywords: _containers.RepeatedScalarFieldContainer[int]
    unknown_keywords: _containers.RepeatedScalarFieldContainer[int]
    active_topics: _containers.RepeatedScalarFieldContainer[int]
    top_counts: _containers.RepeatedScalarFieldContainer[int]
    top_topics: _containers.RepeatedScalarFieldContainer[int]
    top_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model_version: _Optional[str] = ..., projections: _Optional[_Iterable[_Union[Projection, _Mapping]]] = ..., dense: _Optional[bytes] = ..., topics: _Optional[int] = ..., known_keywords: _Optional[_Iterable[int]] = ..., unknown_keywords: _Optional[_Iterable[int]] = ..., active_topics: _Optional[_Iterable[int]] = ..., top_counts: _Optional[_Iterable[int]] = ..., top_topics: _Optional[_Iterable[int]] = ..., top_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("top_keywords",)
    TOP_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    top_keywords: int
    def __init__(self, top_keywords: _Optional[int] = ...) -> None: ...

class TopicInfo(_message.Message):
    __slots__ = ("topic", "top_keywords", "slope", "threshold", "sharpness", "bias")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TOP_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    topic: int
    top_keywords: _containers.RepeatedScalarFieldContainer[str]
    slope: float
    threshold: float
    sharpness: float
    bias: float
    def __init__(self, topic: _Optional[int] = ..., top_keywords: _Optional[_Iterable[str]] = ..., slope: _Optional[float] = ..., threshold: _Optional[float] = ..., sharpness: _Optional[float] = ..., bias: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("version", "topics", "vocabulary_size", "activation", "device", "topic_info")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_INFO_FIELD_NUMBER: _ClassVar[int]
    version: str
    topics: int
    vocabulary_size: int
    activation: str
    device: str
    topic_info: _containers.RepeatedCompositeFieldContainer[TopicInfo]
    def __init__(self, version: _Optional[str] = ..., topics: _Optional[int] = ..., vocabulary_size: _Optional[int] = ..., activation: _Optional[str] = ..., device: _Optional[str] = ..., topic_info: _Optional[_Iterable[_Union[TopicInfo, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "created_unix", "active", "serving")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    version: str
    created_unix: float
    active: bool
    serving: bool
    def __init__(self, version: _Optional[str] = ..., created_unix: _Optional[float] = ..., active: _Optional[bool] = ..., serving: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ActivateModelRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("catalog_path", "upload_id", "format", "topics", "activation", "min_df", "max_epochs", "learning_rate", "l1", "seed", "activate_on_success")
    CATALOG_PATH_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MIN_DF_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    L1_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_ON_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    catalog_path: str
    upload_id: str
    format: str
    topics: int
    activation: str
    min_df: int
    max_epochs: int
    learning_rate: float
    l1: float
    seed: int
    activate_on_success: bool
    def __init__(self, catalog_path: _Optional[str] = ..., upload_id: _Optional[str] = ..., format: _Optional[str] = ..., topics: _Optional[int] = ..., activation: _Optional[str] = ..., min_df: _Optional[int] = ..., max_epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., l1: _Optional[float] = ..., seed: _Optional[int] = ..., activate_on_success: _Optional[bool] = ...) -> None: ...

class CatalogChunk(_message.Message):
    __slots__ = ("filename", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadedCatalog(_message.Message):
    __slots__ = ("upload_id", "bytes")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    bytes: int
    def __init__(self, upload_id: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class TrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("id", "state", "epoch", "max_epochs", "train_loss", "validation_loss", "error", "model_version", "activated", "created_unix")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TrainingJob.State]
        QUEUED: _ClassVar[TrainingJob.State]
        RUNNING: _ClassVar[TrainingJob.State]
        SUCCEEDED: _ClassVar[TrainingJob.State]
        FAILED: _ClassVar[TrainingJob.State]
        CANCELLED: _ClassVar[TrainingJob.State]
    STATE_UNSPECIFIED: TrainingJob.State
    QUEUED: TrainingJob.State
    RUNNING: TrainingJob.State
    SUCCEEDED: TrainingJob.State
    FAILED: TrainingJob.State
    CANCELLED: TrainingJob.State
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: TrainingJob.State
    epoch: int
    max_epochs: int
    train_loss: float
    validation_loss: float
    error: str
    model_version: str
    activated: bool
    created_unix: float
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[TrainingJob.State, str]] = ..., epoch: _Optional[int] = ..., max_epochs: _Optional[int] = ..., train_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., error: _Optional[str] = ..., model_version: _Optional[str] = ..., activated: _Optional[bool] = ..., created_unix: _Optional[float] = ...) -> None: ...
