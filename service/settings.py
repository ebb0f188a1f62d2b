"""Service configuration: one pydantic settings object, from flags and `TOPICPROJ_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything `topicproj serve` can be told. Flags win over environment variables."""

    model_config = SettingsConfigDict(env_prefix="TOPICPROJ_", extra="forbid")

    model: Path | None = Field(None, description="model directory; none: the demo model")
    model_root: Path | None = Field(
        None, description="registry of model versions (ListModels, ActivateModel); see README"
    )
    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0: every interface)")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int | None = Field(
        9095, ge=0, le=65535, description="Prometheus metrics port; none: no metrics endpoint"
    )
    # The metrics say nothing secret and change nothing, and Prometheus must reach them in the
    # shipped Deployment, so by default they listen where gRPC does; 127.0.0.1 keeps them
    # private to the machine (scrape through a sidecar or a port-forward then).
    metrics_host: str | None = Field(
        None, description="address of the metrics endpoint; none: the gRPC host"
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    # Processes and threads. Each worker is a whole server (model, batcher, metrics endpoint)
    # on the same port; the kernel spreads connections over them (SO_REUSEPORT).
    workers: int = Field(1, ge=1, description="server processes sharing the gRPC port")
    # Intra-op threads of each worker's projection. A serving batch is small (256 items take
    # about 0.2 ms on one core), and a second thread only waits for a core that the event loop
    # and gRPC need: measured 15.8 ms against 0.18 ms per 256 items on a busy 2-core machine.
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads per worker")

    # How often a Python thread holding the GIL hands it over (Python's default: 5 ms). Large
    # requests are decoded and mapped in worker threads; a shorter interval lets the event
    # loop (health checks, small requests) in between more often.
    switch_interval_ms: float = Field(
        1.0, gt=0.0, le=100.0, description="GIL switch interval of the server process"
    )

    # Dynamic batching: a batch closes at max_batch_items, or when its oldest item has waited
    # max_wait_ms. 256 items keep a CPU batch near 1 ms; the wait bounds the latency added.
    max_batch_items: int = Field(256, ge=1, description="items per batch at most")
    max_wait_ms: float = Field(
        2.0, ge=0.0, description="longest wait of a request for company in its batch"
    )
    # By default a request is held for company only while requests arrive together (the last
    # batch merged several): a lone client would otherwise pay the whole window every time.
    # True: hold every request up to max_wait_ms, like a classic dynamic batcher.
    wait_when_idle: bool = Field(
        False, description="hold even a lone request for max_wait_ms, like a classic batcher"
    )
    # A request that fills most of a batch on its own gains nothing from company: it skips the
    # queue and computes at once (the direct path), on the event loop when it is small enough
    # to keep the loop's pause to a few milliseconds, else in its lane's thread. 0: never.
    direct_items: int = Field(
        128, ge=0, description="items from which a request skips the batcher (0: never)"
    )
    direct_inline_keywords: int = Field(
        16384,
        ge=0,
        description="keywords up to which a direct request computes on the event loop",
    )
    max_queue_items: int = Field(65536, ge=1, description="queued items before RESOURCE_EXHAUSTED")
    response_cache_bytes: int = Field(
        64 << 20,
        ge=0,
        description="bytes of answers kept for repeated Project requests; 0 turns the cache off",
    )
    retry_delay_ms: float = Field(
        100.0, ge=0.0, description="delay an overloaded server asks refused clients to wait"
    )

    # Input limits
    max_items_per_request: int = Field(4096, ge=1, description="larger requests are refused")
    max_keywords_per_item: int = Field(4096, ge=1, description="larger items are refused")
    max_keyword_length: int = Field(
        256, ge=1, description="characters per keyword at most (so at most 4x in UTF-8 bytes)"
    )
    # The cost of a call is its keywords (a string, a lookup and a batch row each). 65,536
    # keywords is 16 items of 4,096 keywords, or 4,096 items of 16; such a request takes about
    # 0.1 s of one core to decode and map, which is what a small request may wait behind it.
    # Four times as many took 0.5 s and more. The queue's budget holds 8 of them. Measured
    # with three clients sending the largest requests back to back: benchmarks/RESULTS.md
    # ("Serving: hostile input").
    max_keywords_per_request: int = Field(
        65_536, ge=1, description="keywords in one request at most (INVALID_ARGUMENT)"
    )
    max_queued_keywords: int = Field(
        524_288,
        ge=1,
        description="keywords of admitted, unanswered requests, all clients together, before "
        "RESOURCE_EXHAUSTED",
    )
    # A weight enters the squared norm of its item; 1e6 keeps the largest item (4,096 copies
    # of one keyword at the largest weight) near 1.7e19, far below float32's 3.4e38, so no
    # finite, allowed input can overflow a projection.
    max_keyword_weight: float = Field(
        1e6, gt=0.0, le=1e12, description="largest weight of one keyword (INVALID_ARGUMENT)"
    )
    max_explained_items: int = Field(
        256, ge=1, description="items of one request that may ask for explanations"
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="largest gRPC message the server sends"
    )
    # Set on purpose, not grpc's default of 4 MiB: the largest request allowed above holds
    # 65,536 keywords of up to 256 characters (64 bytes on average fits 4 MiB); grpc refuses
    # larger messages before decoding them (RESOURCE_EXHAUSTED), so a huge message costs no
    # more than its bytes on the wire.
    max_receive_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest gRPC message the server receives"
    )

    # Training through the service (needs model_root: new models join the registry)
    data_root: Path | None = Field(
        None, description="catalogs StartTraining may read by path; nothing outside it"
    )
    max_upload_bytes: int = Field(256 * 1024 * 1024, ge=1, description="per UploadCatalog")
    # Uploads are kept upload_ttl_hours for more jobs; these bound what they may hold on disk
    # together, and how many may arrive at once (each holds a file open and a thread).
    max_upload_total_bytes: int = Field(
        1024 * 1024 * 1024, ge=1, description="bytes of every kept upload together"
    )
    max_uploads: int = Field(32, ge=1, description="uploads kept at once")
    max_concurrent_uploads: int = Field(2, ge=1, description="uploads arriving at once")
    max_queued_jobs: int = Field(4, ge=1, description="training jobs waiting before refusal")
    # What one training job may cost: its size is checked when it is submitted (refused with
    # INVALID_ARGUMENT, counted in topicproj_requests_refused_total), its time while it runs
    # (stopped, FAILED, counted in topicproj_training_job_failures_total).
    max_job_topics: int = Field(1024, ge=2, description="topics a training job may ask for")
    max_job_epochs: int = Field(2000, ge=1, description="epochs a training job may ask for")
    max_job_hours: float = Field(
        12.0, gt=0, description="a training job running longer is stopped and fails"
    )
    upload_ttl_hours: float = Field(
        24.0, gt=0, description="uploaded catalogs are deleted this long after upload"
    )

    # Access control. The token is better given as TOPICPROJ_AUTH_TOKEN than as a flag, which
    # other users of the machine can read in the process list.
    auth_token: SecretStr | None = Field(
        None, description="bearer token required by the RPCs that change state"
    )
    auth_all: bool = Field(False, description="require the token on every RPC, health included")
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve over TLS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")

    # Operations
    tracing: bool = Field(
        False,
        description="OpenTelemetry spans per RPC, queue wait and batch compute (needs "
        "topicproj[otel]); OTEL_TRACES_EXPORTER=otlp|console turns it on too",
    )
    dead_topic_window: int = Field(
        10000, ge=1, description="items seen before a silent topic counts as dead"
    )
    # Traffic profile (GetTraffic, topicproj_topic_drift): the recent items of each served
    # version in a ring of buckets, compared with the model's training baseline. The window
    # holds traffic_buckets x traffic_bucket_items items; the alert thresholds of
    # deploy/generate.py were calibrated on 10,000 (see benchmarks/RESULTS.md).
    traffic_profile: bool = Field(
        True, description="keep a profile of recent traffic per served version (GetTraffic)"
    )
    traffic_bucket_items: int = Field(
        1000, ge=1, description="items per bucket of the traffic window"
    )
    traffic_buckets: int = Field(10, ge=1, description="buckets in the traffic window")
    traffic_unknown_keywords: int = Field(
        2000, ge=1, description="unknown keywords the traffic profile tracks at most (a sketch)"
    )
    traffic_topic_series: bool = Field(
        False,
        description="also export one metric series per topic (its active share): topics x "
        "series per server, so off by default",
    )
    drain_seconds: float = Field(
        5.0,
        ge=0.0,
        description="on SIGTERM, serve on this long while health says NOT_SERVING, so that "
        "load balancers and clients move away first",
    )
    grace_seconds: float = Field(
        10.0, ge=0.0, description="then, time in-flight requests get to finish"
    )
    max_connection_age_seconds: float | None = Field(
        None,
        gt=0.0,
        description="close each client connection (GOAWAY) after this long, so connections "
        "rebalance across replicas; none: never",
    )
    # Idle connections cost a file descriptor each: without this, ~20,000 idle TCP connections
    # exhaust the process's descriptors and real calls time out.
    max_connection_idle_seconds: float = Field(
        300.0, gt=0.0, description="close a connection after this long without a call"
    )
    max_concurrent_streams: int = Field(
        100, ge=1, description="calls in flight on one connection at most (HTTP/2 streams)"
    )
    max_concurrent_rpcs: int = Field(
        1000, ge=1, description="calls in flight on the server at most; more: RESOURCE_EXHAUSTED"
    )
    max_connection_age_grace_seconds: float = Field(
        30.0, ge=0.0, description="time calls on an aged-out connection get to finish"
    )
    demo_model_dir: Path = Field(
        Path("runs/demo-model"), description="where the demo model is kept (trained on first use)"
    )

    @model_validator(mode="after")
    def _tls_and_auth_are_whole(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        if self.auth_token is not None and not self.auth_token.get_secret_value():
            raise ValueError("auth_token is empty; leave it unset to turn authentication off")
        if self.auth_all and self.auth_token is None:
            raise ValueError("auth_all needs an auth_token")
        if self.model_root is not None and self.workers > 1:
            # Each worker would keep its own job queue and swap only its own model: a client
            # would see jobs vanish and versions differ between its connections.
            raise ValueError(
                "model_root with more than one worker is not supported: training jobs and "
                "ActivateModel act on one process; run one worker, or serve --model"
            )
        if self.max_upload_bytes > self.max_upload_total_bytes:
            raise ValueError(
                f"max_upload_bytes ({self.max_upload_bytes}) exceeds max_upload_total_bytes "
                f"({self.max_upload_total_bytes})"
            )
        return self

    @model_validator(mode="after")
    def _limits_fit_the_queue(self) -> Settings:
        # A request larger than the queue would be refused with RESOURCE_EXHAUSTED forever,
        # a status clients are told to retry.
        if self.max_items_per_request > self.max_queue_items:
            raise ValueError(
                f"max_items_per_request ({self.max_items_per_request}) exceeds max_queue_items "
                f"({self.max_queue_items})"
            )
        if self.max_keywords_per_request > self.max_queued_keywords:
            raise ValueError(
                f"max_keywords_per_request ({self.max_keywords_per_request}) exceeds "
                f"max_queued_keywords ({self.max_queued_keywords})"
            )
        return self
