import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResponseForm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_FORM_UNSPECIFIED: _ClassVar[ResponseForm]
    RESPONSE_FORM_ITEMS: _ClassVar[ResponseForm]
    RESPONSE_FORM_COLUMNS: _ClassVar[ResponseForm]
RESPONSE_FORM_UNSPECIFIED: ResponseForm
RESPONSE_FORM_ITEMS: ResponseForm
RESPONSE_FORM_COLUMNS: ResponseForm

class ProjectRequest(_message.Message):
    __slots__ = ("item_list", "packed", "response_form", "top_k", "omit_topics", "model_version", "explain", "explain_keywords")
    ITEM_LIST_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORM_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    OMIT_TOPICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    item_list: ItemList
    packed: PackedItems
    response_form: ResponseForm
    top_k: int
    omit_topics: bool
    model_version: str
    explain: bool
    explain_keywords: int
    def __init__(self, item_list: _Optional[_Union[ItemList, _Mapping]] = ..., packed: _Optional[_Union[PackedItems, _Mapping]] = ..., response_form: _Optional[_Union[ResponseForm, str]] = ..., top_k: _Optional[int] = ..., omit_topics: _Optional[bool] = ..., model_version: _Optional[str] = ..., explain: _Optional[bool] = ..., explain_keywords: _Optional[int] = ...) -> None: ...

class ItemList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "keywords", "weights")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    keywords: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., keywords: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class PackedItems(_message.Message):
    __slots__ = ("keywords", "keyword_counts", "weights", "ids")
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_COUNTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    keywords: str
    keyword_counts: _containers.RepeatedScalarFieldContainer[int]
    weights: _containers.RepeatedScalarFieldContainer[float]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keywords: _Optional[str] = ..., keyword_counts: _Optional[_Iterable[int]] = ..., weights: _Optional[_Iterable[float]] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ProjectResponse(_message.Message):
    __slots__ = ("model_version", "topic_count", "projection_list", "columns")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_LIST_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    topic_count: int
    projection_list: ProjectionList
    columns: ProjectionColumns
    def __init__(self, model_version: _Optional[str] = ..., topic_count: _Optional[int] = ..., projection_list: _Optional[_Union[ProjectionList, _Mapping]] = ..., columns: _Optional[_Union[ProjectionColumns, _Mapping]] = ...) -> None: ...

class ProjectionList(_message.Message):
    __slots__ = ("projections",)
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    projections: _containers.RepeatedCompositeFieldContainer[Projection]
    def __init__(self, projections: _Optional[_Iterable[_Union[Projection, _Mapping]]] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("id", "topics", "top", "known_keywords", "unknown_keywords", "active_topics", "explanation")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    KNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    topics: _containers.RepeatedScalarFieldContainer[float]
    top: _containers.RepeatedCompositeFieldContainer[TopicScore]
    known_keywords: int
    unknown_keywords: int
    active_topics: int
    explanation: Explanation
    def __init__(self, id: _Optional[str] = ..., topics: _Optional[_Iterable[float]] = ..., top: _Optional[_Iterable[_Union[TopicScore, _Mapping]]] = ..., known_keywords: _Optional[int] = ..., unknown_keywords: _Optional[int] = ..., active_topics: _Optional[int] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("active_topics", "closed_topics")
    ACTIVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TOPICS_FIELD_NUMBER: _ClassVar[int]
    active_topics: _containers.RepeatedCompositeFieldContainer[TopicExplanation]
    closed_topics: _containers.RepeatedCompositeFieldContainer[TopicExplanation]
    def __init__(self, active_topics: _Optional[_Iterable[_Union[TopicExplanation, _Mapping]]] = ..., closed_topics: _Optional[_Iterable[_Union[TopicExplanation, _Mapping]]] = ...) -> None: ...

class TopicExplanation(_message.Message):
    __slots__ = ("topic", "activation", "pre_activation", "bias", "overlap", "threshold", "sharpness", "gate", "keywords")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    PRE_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    topic: int
    activation: float
    pre_activation: float
    bias: float
    overlap: float
    threshold: float
    sharpness: float
    gate: float
    keywords: _containers.RepeatedCompositeFieldContainer[KeywordContribution]
    def __init__(self, topic: _Optional[int] = ..., activation: _Optional[float] = ..., pre_activation: _Optional[float] = ..., bias: _Optional[float] = ..., overlap: _Optional[float] = ..., threshold: _Optional[float] = ..., sharpness: _Optional[float] = ..., gate: _Optional[float] = ..., keywords: _Optional[_Iterable[_Union[KeywordContribution, _Mapping]]] = ...) -> None: ...

class KeywordContribution(_message.Message):
    __slots__ = ("keyword", "contribution")
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    keyword: str
    contribution: float
    def __init__(self, keyword: _Optional[str] = ..., contribution: _Optional[float] = ...) -> None: ...

class TopicScore(_message.Message):
    __slots__ = ("topic", "score", "label")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    topic: int
    score: float
    label: str
    def __init__(self, topic: _Optional[int] = ..., score: _Optional[float] = ..., label: _Optional[str] = ...) -> None: ...

class ProjectionColumns(_message.Message):
    __slots__ = ("topics", "known_keywords", "unknown_keywords", "active_topics", "top_counts", "top_topics", "top_scores", "explanations", "top_labels")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOP_TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOP_SCORES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    TOP_LABELS_FIELD_NUMBER: _ClassVar[int]
    topics: bytes
    known_keywords: _containers.RepeatedScalarFieldContainer[int]
    unknown_keywords: _containers.RepeatedScalarFieldContainer[int]
    active_topics: _containers.RepeatedScalarFieldContainer[int]
    top_counts: _containers.RepeatedScalarFieldContainer[int]
    top_topics: _containers.RepeatedScalarFieldContainer[int]
    top_scores: _containers.RepeatedScalarFieldContainer[float]
    explanations: _containers.RepeatedCompositeFieldContainer[Explanation]
    top_labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, topics: _Optional[bytes] = ..., known_keywords: _Optional[_Iterable[int]] = ..., unknown_keywords: _Optional[_Iterable[int]] = ..., active_topics: _Optional[_Iterable[int]] = ..., top_counts: _Optional[_Iterable[int]] = ..., top_topics: _Optional[_Iterable[int]] = ..., top_scores: _Optional[_Iterable[float]] = ..., explanations: _Optional[_Iterable[_Union[Explanation, _Mapping]]] = ..., top_labels: _Optional[_Iterable[str]] = ...) -> None: ...

class ProjectStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ProjectRequest
    def __init__(self, request: _Optional[_Union[ProjectRequest, _Mapping]] = ...) -> None: ...

class ProjectStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: ProjectResponse
    def __init__(self, response: _Optional[_Union[ProjectResponse, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("top_keywords",)
    TOP_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    top_keywords: int
    def __init__(self, top_keywords: _Optional[int] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("version", "topic_count", "vocabulary_size", "activation", "device", "topics", "lineage")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_COUNT_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    version: str
    topic_count: int
    vocabulary_size: int
    activation: str
    device: str
    topics: _containers.RepeatedCompositeFieldContainer[Topic]
    lineage: Lineage
    def __init__(self, version: _Optional[str] = ..., topic_count: _Optional[int] = ..., vocabulary_size: _Optional[int] = ..., activation: _Optional[str] = ..., device: _Optional[str] = ..., topics: _Optional[_Iterable[_Union[Topic, _Mapping]]] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("parent_version", "topic_similarity", "kept_threshold", "kept_topic_count", "keywords_added", "keywords_dropped", "added_topic_count")
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    KEPT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    KEPT_TOPIC_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_ADDED_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    ADDED_TOPIC_COUNT_FIELD_NUMBER: _ClassVar[int]
    parent_version: str
    topic_similarity: _containers.RepeatedScalarFieldContainer[float]
    kept_threshold: float
    kept_topic_count: int
    keywords_added: int
    keywords_dropped: int
    added_topic_count: int
    def __init__(self, parent_version: _Optional[str] = ..., topic_similarity: _Optional[_Iterable[float]] = ..., kept_threshold: _Optional[float] = ..., kept_topic_count: _Optional[int] = ..., keywords_added: _Optional[int] = ..., keywords_dropped: _Optional[int] = ..., added_topic_count: _Optional[int] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("index", "top_keywords", "slope", "threshold", "sharpness", "bias", "label", "label_set")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOP_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_SET_FIELD_NUMBER: _ClassVar[int]
    index: int
    top_keywords: _containers.RepeatedScalarFieldContainer[str]
    slope: float
    threshold: float
    sharpness: float
    bias: float
    label: str
    label_set: bool
    def __init__(self, index: _Optional[int] = ..., top_keywords: _Optional[_Iterable[str]] = ..., slope: _Optional[float] = ..., threshold: _Optional[float] = ..., sharpness: _Optional[float] = ..., bias: _Optional[float] = ..., label: _Optional[str] = ..., label_set: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("model_versions",)
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    model_versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, model_versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "create_time", "active", "serving", "lineage")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    version: str
    create_time: _timestamp_pb2.Timestamp
    active: bool
    serving: bool
    lineage: Lineage
    def __init__(self, version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active: _Optional[bool] = ..., serving: _Optional[bool] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ...) -> None: ...

class ActivateModelRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class ActivateModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class SetTopicLabelsRequest(_message.Message):
    __slots__ = ("version", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    version: str
    labels: _containers.ScalarMap[int, str]
    def __init__(self, version: _Optional[str] = ..., labels: _Optional[_Mapping[int, str]] = ...) -> None: ...

class SetTopicLabelsResponse(_message.Message):
    __slots__ = ("labels", "set_topics")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SET_TOPICS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    set_topics: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, labels: _Optional[_Iterable[str]] = ..., set_topics: _Optional[_Iterable[int]] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("catalog_path", "upload_id", "format", "options", "activate_on_success", "parent_version", "from_scratch", "add_topics")
    CATALOG_PATH_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_ON_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_SCRATCH_FIELD_NUMBER: _ClassVar[int]
    ADD_TOPICS_FIELD_NUMBER: _ClassVar[int]
    catalog_path: str
    upload_id: str
    format: str
    options: TrainingOptions
    activate_on_success: bool
    parent_version: str
    from_scratch: bool
    add_topics: int
    def __init__(self, catalog_path: _Optional[str] = ..., upload_id: _Optional[str] = ..., format: _Optional[str] = ..., options: _Optional[_Union[TrainingOptions, _Mapping]] = ..., activate_on_success: _Optional[bool] = ..., parent_version: _Optional[str] = ..., from_scratch: _Optional[bool] = ..., add_topics: _Optional[int] = ...) -> None: ...

class TrainingOptions(_message.Message):
    __slots__ = ("topics", "activation", "min_df", "max_vocabulary", "init", "max_epochs", "patience", "batch_size", "learning_rate", "mask_rate", "l1", "validation_fraction", "seed", "target_zeros", "max_df", "stop_keywords")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MIN_DF_FIELD_NUMBER: _ClassVar[int]
    MAX_VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MASK_RATE_FIELD_NUMBER: _ClassVar[int]
    L1_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TARGET_ZEROS_FIELD_NUMBER: _ClassVar[int]
    MAX_DF_FIELD_NUMBER: _ClassVar[int]
    STOP_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    topics: int
    activation: str
    min_df: int
    max_vocabulary: int
    init: str
    max_epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    mask_rate: float
    l1: float
    validation_fraction: float
    seed: int
    target_zeros: float
    max_df: float
    stop_keywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, topics: _Optional[int] = ..., activation: _Optional[str] = ..., min_df: _Optional[int] = ..., max_vocabulary: _Optional[int] = ..., init: _Optional[str] = ..., max_epochs: _Optional[int] = ..., patience: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., mask_rate: _Optional[float] = ..., l1: _Optional[float] = ..., validation_fraction: _Optional[float] = ..., seed: _Optional[int] = ..., target_zeros: _Optional[float] = ..., max_df: _Optional[float] = ..., stop_keywords: _Optional[_Iterable[str]] = ...) -> None: ...

class StartTrainingResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class UploadCatalogRequest(_message.Message):
    __slots__ = ("filename", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadCatalogResponse(_message.Message):
    __slots__ = ("upload_id", "size_bytes")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    size_bytes: int
    def __init__(self, upload_id: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class CancelTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("id", "state", "done", "progress", "response", "error", "options", "create_time", "update_time", "parent_version")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TrainingJob.State]
        STATE_QUEUED: _ClassVar[TrainingJob.State]
        STATE_RUNNING: _ClassVar[TrainingJob.State]
        STATE_SUCCEEDED: _ClassVar[TrainingJob.State]
        STATE_FAILED: _ClassVar[TrainingJob.State]
        STATE_CANCELLED: _ClassVar[TrainingJob.State]
    STATE_UNSPECIFIED: TrainingJob.State
    STATE_QUEUED: TrainingJob.State
    STATE_RUNNING: TrainingJob.State
    STATE_SUCCEEDED: TrainingJob.State
    STATE_FAILED: TrainingJob.State
    STATE_CANCELLED: TrainingJob.State
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: TrainingJob.State
    done: bool
    progress: TrainingProgress
    response: TrainingResult
    error: str
    options: TrainingOptions
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    parent_version: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[TrainingJob.State, str]] = ..., done: _Optional[bool] = ..., progress: _Optional[_Union[TrainingProgress, _Mapping]] = ..., response: _Optional[_Union[TrainingResult, _Mapping]] = ..., error: _Optional[str] = ..., options: _Optional[_Union[TrainingOptions, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_version: _Optional[str] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("epoch", "max_epochs", "train_loss", "validation_loss")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    max_epochs: int
    train_loss: float
    validation_loss: float
    def __init__(self, epoch: _Optional[int] = ..., max_epochs: _Optional[int] = ..., train_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ...) -> None: ...

class TrainingResult(_message.Message):
    __slots__ = ("model_version", "activated")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    activated: bool
    def __init__(self, model_version: _Optional[str] = ..., activated: _Optional[bool] = ...) -> None: ...

class GetTrafficRequest(_message.Message):
    __slots__ = ("version", "top_unknown_keywords")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOP_UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    version: str
    top_unknown_keywords: int
    def __init__(self, version: _Optional[str] = ..., top_unknown_keywords: _Optional[int] = ...) -> None: ...

class GetTrafficResponse(_message.Message):
    __slots__ = ("version", "has_baseline", "drift", "window_items", "window_capacity", "window_age", "items_seen", "unassigned_ratio", "baseline_unassigned_ratio", "unknown_keyword_ratio", "baseline_unknown_keyword_ratio", "topics", "moved_topics", "unknown_keywords", "keyword_lengths", "baseline_keyword_lengths")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_BASELINE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ITEMS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_AGE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SEEN_FIELD_NUMBER: _ClassVar[int]
    UNASSIGNED_RATIO_FIELD_NUMBER: _ClassVar[int]
    BASELINE_UNASSIGNED_RATIO_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORD_RATIO_FIELD_NUMBER: _ClassVar[int]
    BASELINE_UNKNOWN_KEYWORD_RATIO_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    MOVED_TOPICS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_KEYWORD_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    version: str
    has_baseline: bool
    drift: float
    window_items: int
    window_capacity: int
    window_age: _duration_pb2.Duration
    items_seen: int
    unassigned_ratio: float
    baseline_unassigned_ratio: float
    unknown_keyword_ratio: float
    baseline_unknown_keyword_ratio: float
    topics: _containers.RepeatedCompositeFieldContainer[TopicTraffic]
    moved_topics: _containers.RepeatedScalarFieldContainer[int]
    unknown_keywords: _containers.RepeatedCompositeFieldContainer[UnknownKeyword]
    keyword_lengths: _containers.RepeatedScalarFieldContainer[int]
    baseline_keyword_lengths: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, version: _Optional[str] = ..., has_baseline: _Optional[bool] = ..., drift: _Optional[float] = ..., window_items: _Optional[int] = ..., window_capacity: _Optional[int] = ..., window_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., items_seen: _Optional[int] = ..., unassigned_ratio: _Optional[float] = ..., baseline_unassigned_ratio: _Optional[float] = ..., unknown_keyword_ratio: _Optional[float] = ..., baseline_unknown_keyword_ratio: _Optional[float] = ..., topics: _Optional[_Iterable[_Union[TopicTraffic, _Mapping]]] = ..., moved_topics: _Optional[_Iterable[int]] = ..., unknown_keywords: _Optional[_Iterable[_Union[UnknownKeyword, _Mapping]]] = ..., keyword_lengths: _Optional[_Iterable[int]] = ..., baseline_keyword_lengths: _Optional[_Iterable[int]] = ...) -> None: ...

class TopicTraffic(_message.Message):
    __slots__ = ("topic", "label", "share", "mean_activation", "baseline_share", "baseline_mean_activation")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    MEAN_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SHARE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MEAN_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    topic: int
    label: str
    share: float
    mean_activation: float
    baseline_share: float
    baseline_mean_activation: float
    def __init__(self, topic: _Optional[int] = ..., label: _Optional[str] = ..., share: _Optional[float] = ..., mean_activation: _Optional[float] = ..., baseline_share: _Optional[float] = ..., baseline_mean_activation: _Optional[float] = ...) -> None: ...

class UnknownKeyword(_message.Message):
    __slots__ = ("keyword", "count", "error")
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    keyword: str
    count: float
    error: float
    def __init__(self, keyword: _Optional[str] = ..., count: _Optional[float] = ..., error: _Optional[float] = ...) -> None: ...
