"""The job queue: training jobs learned on request, in a process of their own, one at a time.

A job trains in a child process (spawned: no forked grpc or torch state), at a lower CPU
priority and with one torch thread fewer than the machine has, so that serving keeps its
latency while it trains. The child reports every epoch through a queue; the parent keeps the
job's state, records it under `<model root>/jobs/` and wakes whoever watches it. A successful
job adds its model to the registry and, if asked, activates it. After a restart, queued jobs
wait again and a job that was running is marked failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from topicproj.models.store.lease import Lease
from topicproj.service.errors import (
    InvalidInput,
    NoDataRoot,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    TooLarge,
    TooMany,
)
from topicproj.service.metrics import ServiceMetrics

from .child import public_error, train_in_child
from .spec import ENDED, Job, JobState, TrainSpec

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the parent looks at a running job's progress queue
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


MAX_NAME_BYTES = 255  # what most file systems allow in one name


def upload_name(filename: str) -> str:
    """An upload's file name, checked: one plain name, never a path (InvalidInput)."""
    field = "filename"
    if not filename:
        raise InvalidInput("the first chunk must name the file", field)
    if "\0" in filename or "/" in filename or "\\" in filename:
        raise InvalidInput("a file name, without NUL or path separators", field)
    if filename in (".", "..") or not filename.isprintable():
        raise InvalidInput(f"{filename!r} is not a usable file name", field)
    if len(filename.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidInput(f"longer than {MAX_NAME_BYTES} bytes", field)
    return filename


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused unless it stays inside `root` once symlinks are followed."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise PermissionDenied(f"{relative!r} is outside the data root")
    return target


class TrainingJobs:
    """The job queue of one server process."""

    def __init__(
        self,
        *,
        model_root: Path,
        data_root: Path | None,
        device: str,
        max_queued: int,
        max_upload_bytes: int,
        activate: Callable[[str], Awaitable[Any]],
        upload_ttl_s: float = 24 * 3600.0,
        metrics: ServiceMetrics | None = None,
        max_upload_total_bytes: int | None = None,
        max_uploads: int = 32,
        max_concurrent_uploads: int = 2,
        max_job_topics: int = 1024,
        max_job_epochs: int = 2000,
        max_job_seconds: float = 12 * 3600.0,
    ) -> None:
        self.model_root = model_root
        self.uploads = model_root / "uploads"
        self.data_root = data_root
        self.device = device
        self.max_queued = max_queued
        self.max_upload_bytes = max_upload_bytes
        self.upload_ttl_s = upload_ttl_s  # an upload is kept this long, for more jobs on it
        self.max_upload_total_bytes = max_upload_total_bytes or 4 * max_upload_bytes
        self.max_uploads = max_uploads
        self.max_concurrent_uploads = max_concurrent_uploads
        self.max_job_topics = max_job_topics
        self.max_job_epochs = max_job_epochs
        self.max_job_seconds = max_job_seconds
        self._uploading = 0  # uploads arriving now
        self._sweeper: asyncio.Task[None] | None = None
        self.activate = activate
        self.metrics = metrics
        self.jobs: dict[str, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._changed = asyncio.Condition()
        self._wakeup = asyncio.Event()
        self._running: tuple[Job, multiprocessing.process.BaseProcess] | None = None
        self._cancelled: set[str] = set()
        self._runner: asyncio.Task[None] | None = None
        self.lease: Lease | None = None

    # -- inputs ---------------------------------------------------------------------------

    def catalog_path(self, catalog_path: str, upload_id: str) -> Path:
        if bool(catalog_path) == bool(upload_id):
            raise InvalidInput("set one of catalog_path and upload_id", "catalog_path")
        if upload_id:
            if not _UPLOAD_ID.fullmatch(upload_id):
                raise NotFound(f"no upload {upload_id!r}")
            files = list((self.uploads / upload_id).glob("*"))
            if not files:
                raise NotFound(f"no upload {upload_id!r}")
            return files[0]
        if self.data_root is None:
            raise NoDataRoot()
        return inside(self.data_root, catalog_path)

    def sweep_uploads(self, now: float | None = None) -> list[str]:
        """Delete uploads older than the time to live that no waiting or running job needs."""
        if not self.uploads.is_dir():
            return []
        now = time.time() if now is None else now
        needed = {
            str(j.spec.catalog.parent.name)
            for j in self.jobs.values()
            if j.state in (JobState.QUEUED, JobState.RUNNING)
        }
        removed = []
        for folder in self.uploads.iterdir():
            try:
                old = now - folder.stat().st_mtime > self.upload_ttl_s
            except OSError:
                continue
            if old and folder.name not in needed:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        if removed:
            log.info("removed %d uploads older than %.0f s", len(removed), self.upload_ttl_s)
        return removed

    def _kept_uploads(self) -> tuple[int, int]:
        """(uploads kept, their bytes together), in-flight ones included."""
        count = total = 0
        if not self.uploads.is_dir():
            return 0, 0
        for folder in self.uploads.iterdir():
            count += 1
            for f in folder.iterdir() if folder.is_dir() else ():
                with contextlib.suppress(OSError):
                    total += f.stat().st_size
        return count, total

    async def upload(self, chunks: AsyncIterator[Any]) -> tuple[str, int]:
        """Write an uploaded catalog; (upload_id, bytes). Nothing is kept if it fails.

        Every file operation runs in a worker thread: a slow disk (or a large upload) must not
        stall the event loop that serves Project calls beside it. Quotas: uploads arriving at
        once, uploads kept, and their bytes together (QuotaExceeded: RESOURCE_EXHAUSTED).
        """
        if self._uploading >= self.max_concurrent_uploads:
            raise QuotaExceeded(
                "max_concurrent_uploads",
                f"{self._uploading} uploads are arriving already; the limit is "
                f"{self.max_concurrent_uploads}; retry when one has finished",
                1.0,
            )
        self._uploading += 1
        try:
            return await self._upload(chunks)
        finally:
            self._uploading -= 1

    async def _upload(self, chunks: AsyncIterator[Any]) -> tuple[str, int]:
        await asyncio.to_thread(self.sweep_uploads)
        kept, kept_bytes = await asyncio.to_thread(self._kept_uploads)
        if kept >= self.max_uploads:
            raise QuotaExceeded(
                "max_uploads",
                f"{kept} uploads are kept; the limit is {self.max_uploads}; they are deleted "
                f"{self.upload_ttl_s / 3600:g} h after upload",
            )
        room = min(self.max_upload_bytes, self.max_upload_total_bytes - kept_bytes)
        upload_id = uuid.uuid4().hex
        folder = self.uploads / upload_id
        await asyncio.to_thread(folder.mkdir, parents=True)
        size = 0
        name = ""
        try:
            handle = None
            async for chunk in chunks:
                if handle is None:
                    name = upload_name(chunk.filename)
                    # closed below, on every path
                    handle = await asyncio.to_thread(open, folder / name, "wb")
                size += len(chunk.data)
                if size > self.max_upload_bytes:
                    raise TooMany(
                        f"upload larger than the server's limit of {self.max_upload_bytes} bytes"
                    )
                if size > room:
                    raise QuotaExceeded(
                        "max_upload_total_bytes",
                        f"the kept uploads hold {kept_bytes} bytes; with this one they would "
                        f"pass the limit of {self.max_upload_total_bytes}",
                    )
                await asyncio.to_thread(handle.write, chunk.data)
            if handle is None:
                raise InvalidInput("an upload needs at least one chunk")
            await asyncio.to_thread(handle.close)
        except BaseException:
            # synchronous on purpose: this path may run while the task is being cancelled
            if handle is not None:
                handle.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("received upload %s (%r, %d bytes)", upload_id, name, size)
        return upload_id, size

    # -- jobs -----------------------------------------------------------------------------

    def start(self) -> None:
        # This server owns the registry's training from now on: children of an earlier server
        # still running (they should have died with it) can no longer add versions.
        self.lease = Lease.take(self.model_root)
        self._restore()
        self.sweep_uploads()
        loop = asyncio.get_running_loop()
        self._runner = loop.create_task(self._run(), name="training")
        self._sweeper = loop.create_task(self._sweep_forever(), name="upload-sweeper")

    async def _sweep_forever(self) -> None:
        """Expired uploads go even when no new upload comes to trigger a sweep."""
        while True:
            await asyncio.sleep(min(self.upload_ttl_s / 4, 600.0))
            try:
                await asyncio.to_thread(self.sweep_uploads)
            except OSError:
                log.exception("sweeping uploads failed")

    # Every job is also a JSON file under <model root>/jobs, rewritten atomically at each
    # change, so that a restart (or a crash) keeps the record of every job.

    def _path(self, job_id: str) -> Path:
        return self.model_root / "jobs" / f"{job_id}.json"

    def _save(self, job: Job) -> None:
        record = dataclasses.asdict(job)
        record["state"] = job.state.name
        record["spec"] = job.spec.to_record()
        path = self._path(job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)

    def _restore(self) -> None:
        """Jobs of earlier runs: queued ones wait again, ones that were running failed."""
        folder = self.model_root / "jobs"
        records = []
        for path in folder.glob("*.json") if folder.is_dir() else ():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                spec = TrainSpec.from_record(record.pop("spec"))
                record["state"] = JobState[record["state"]]
                records.append(Job(spec=spec, **record))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.error("skipping the unreadable job record %s: %s", path, e)
        for job in sorted(records, key=lambda j: j.created):
            self.jobs[job.id] = job
            if job.state == JobState.QUEUED:
                self._queue.append(job)
            elif job.state == JobState.RUNNING:
                job.state = JobState.FAILED
                job.error = "the server stopped while the job was running; start it again"
                self._save(job)
        if self.jobs:
            self._observe(next(iter(self.jobs.values())), {})
        if self._queue:
            self._wakeup.set()

    async def stop(self) -> None:
        if self._running is not None:
            self._running[1].terminate()
        tasks = [t for t in (self._runner, self._sweeper) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def check_cost(self, spec: TrainSpec) -> None:
        """Refuse a job larger than one job may be: it could never pass, so INVALID_ARGUMENT."""
        o = spec.options
        if o.n_topics > self.max_job_topics:
            raise TooLarge(
                f"{o.n_topics} topics; a training job may have {self.max_job_topics} at most",
                "options.topics",
                "max_job_topics",
            )
        if o.max_epochs > self.max_job_epochs:
            raise TooLarge(
                f"{o.max_epochs} epochs; a training job may run {self.max_job_epochs} at most",
                "options.max_epochs",
                "max_job_epochs",
            )

    async def submit(self, spec: TrainSpec) -> Job:
        self.check_cost(spec)
        waiting = sum(1 for j in self.jobs.values() if j.state == JobState.QUEUED)
        if waiting >= self.max_queued:
            raise TooMany(f"{waiting} training jobs are queued already; try again later")
        job = Job(uuid.uuid4().hex[:16], spec)
        self._save(job)
        self.jobs[job.id] = job
        self._queue.append(job)
        self._observe(job, {})
        self._wakeup.set()
        topics, name = spec.options.n_topics, spec.catalog.name
        log.info("training job %s queued (%d topics, %r)", job.id, topics, name)
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no training job {job_id!r}")
        return job

    async def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state == JobState.QUEUED:
            await self._update(job, state=JobState.CANCELLED)
        elif job.state == JobState.RUNNING and self._running and self._running[0] is job:
            self._cancelled.add(job.id)
            self._running[1].terminate()
        return job

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """The job now, then at every change, until it ends."""
        job = self.get(job_id)
        seen = -1
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: job.revision != seen)
                seen = job.revision
                snapshot = dataclasses.replace(job)
            yield snapshot
            if snapshot.state in ENDED:
                return

    async def _update(self, job: Job, **changes: Any) -> None:
        async with self._changed:
            for k, v in changes.items():
                setattr(job, k, v)
            job.updated = time.time()
            if changes.get("state") == JobState.RUNNING:
                job.started = job.updated
            job.revision += 1
            self._observe(job, changes)
            self._save(job)
            self._changed.notify_all()

    def _observe(self, job: Job, changes: dict[str, Any]) -> None:
        """The job metrics after a change: jobs by state, epochs, and how ended ones went."""
        if self.metrics is None:
            return
        m = self.metrics
        for state in JobState:
            n = sum(1 for j in self.jobs.values() if j.state == state)
            m.jobs.labels(state.name.lower()).set(n)
        if "epoch" in changes:
            m.job_epochs.inc()
        if changes.get("state") in ENDED:
            seconds = job.updated - (job.started or job.created)
            m.job_seconds.labels(job.state.name.lower()).observe(seconds)
            m.last_job_seconds.set(seconds)
            if job.state == JobState.FAILED:
                m.job_failures.inc()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            job = self._queue.popleft()
            if job.state != JobState.QUEUED:  # cancelled while it waited
                continue
            try:
                await self._train(job)
            except Exception as e:  # never let one job stop the queue
                log.exception("training job %s failed in the server", job.id)
                await self._update(job, state=JobState.FAILED, error=public_error(e))

    async def _train(self, job: Job) -> None:
        ctx = multiprocessing.get_context("spawn")
        progress = ctx.Queue()
        proc = ctx.Process(
            target=train_in_child,
            args=(
                job.spec,
                str(self.model_root),
                self.device,
                progress,
                os.getpid(),
                self.lease.token if self.lease is not None else None,
            ),
            name=f"topicproj-train-{job.id}",
            daemon=True,
        )
        proc.start()
        self._running = (job, proc)
        await self._update(job, state=JobState.RUNNING)
        loop = asyncio.get_running_loop()
        outcome: tuple[str, Any] | None = None
        deadline = time.monotonic() + self.max_job_seconds
        try:
            while outcome is None:
                if time.monotonic() > deadline:
                    proc.terminate()
                    outcome = (
                        "failed",
                        f"stopped after {self.max_job_seconds / 3600:g} hours (max_job_hours)",
                    )
                    break
                try:
                    kind, value = await loop.run_in_executor(None, progress.get, True, POLL_S)
                except queue.Empty:
                    if proc.exitcode is not None:
                        # It may have reported just before it exited: read what is left, so
                        # that a success is not taken for a silent death.
                        with contextlib.suppress(queue.Empty):
                            while outcome is None:
                                kind, value = progress.get_nowait()
                                if kind != "epoch":
                                    outcome = (kind, value)
                        break  # died without a word (killed, or crashed) if still None
                    continue
                if kind == "epoch":
                    await self._update(
                        job,
                        epoch=int(value["epoch"]),
                        train_loss=float(value["train_loss"]),
                        validation_loss=float(value["validation_loss"]),
                    )
                else:
                    outcome = (kind, value)
        finally:
            self._running = None
            await loop.run_in_executor(None, proc.join, 10)
            if proc.exitcode is None:
                proc.kill()
            progress.close()
        cancelled = job.id in self._cancelled
        self._cancelled.discard(job.id)
        if cancelled and (outcome is None or outcome[0] != "succeeded"):
            # A cancel that came after the child reported success is too late: the model is
            # in the registry, so the job is what it was, SUCCEEDED.
            await self._update(job, state=JobState.CANCELLED)
        elif outcome is None:
            await self._update(
                job, state=JobState.FAILED, error=f"training process exited with {proc.exitcode}"
            )
        elif outcome[0] == "failed":
            await self._update(job, state=JobState.FAILED, error=str(outcome[1]))
        else:
            version = str(outcome[1])
            activated = False
            if job.spec.activate_on_success:
                await self.activate(version)
                activated = True
            await self._update(
                job, state=JobState.SUCCEEDED, model_version=version, activated=activated
            )
        log.info("training job %s: %s", job.id, job.state.name.lower())
