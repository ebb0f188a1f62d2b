"""Server processes under test: start on a free port, wait for SERVING, measure CPU, stop;
and the project at an older revision, for the 'before' server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from topicproj.v1 import topicproj_pb2 as pb

from .scenarios import HOST, ROOT, SERVICE, ServerConfig


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process and all its threads (Linux /proc), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process and all its descendants alive now (Linux /proc): the workers of
    `--workers N`, and Ray's GCS, raylet and actor processes under the Ray Serve peer."""
    total = process_cpu_seconds(pid)
    if total is None:
        return None
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            parent = int(text[text.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        total += process_cpu_seconds(child) or 0.0
        todo += children.get(child, [])
    return total


class ServerCrashed(RuntimeError):
    pass


def tree_imports(tree: Path, into: Path) -> tuple[list[str], str]:
    """PYTHONPATH entries under which `tree`'s own code wins the imports, and the module of its
    command line. A tree with the one import name gets the wheel's layout as links in `into`:
    proto/topicproj as `topicproj`, models/ and service/ inside it."""
    init = tree / "proto" / "topicproj" / "__init__.py"
    if "topicproj.service" not in (init.read_text(encoding="utf-8") if init.exists() else ""):
        return [str(tree), str(tree / "proto")], "service.cli"  # before the one import name
    package = into / "topicproj"
    package.mkdir(parents=True, exist_ok=True)
    for entry in (tree / "proto" / "topicproj").iterdir():
        if not (package / entry.name).exists():
            (package / entry.name).symlink_to(entry)
    for name in ("models", "service"):
        if not (package / name).exists():
            (package / name).symlink_to(tree / name)
    return [str(into), str(tree)], "topicproj.service.cli"


class ServerProcess:
    def __init__(
        self,
        model: Path,
        config: ServerConfig,
        device: str | None,
        log_dir: Path,
        tag: str,
        request_items: int = 1,
    ) -> None:
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.log_path = log_dir / f"server-{tag}.log"
        self.cwd = config.tree or ROOT
        self.pythonpath: list[str] = []
        cli = "topicproj.service.cli"
        if self.cwd != ROOT:  # an older tree's code, generated proto included, wins the imports
            self.pythonpath, cli = tree_imports(self.cwd, log_dir / f"imports-{tag}")
        self.ready_line: str | None = None  # a peer prints it when up (it has no health service)
        if config.peer is not None:
            self.command = [
                sys.executable,
                "-m",
                f"benchmarks.peers.{config.peer}",
                *("--model", str(model), "--port", str(self.port)),
                *config.flags,
            ]
            if config.peer == "ray_serve_app":
                self.ready_line = "ready"
                # With the batch counted in items, Ray Serve refuses a request larger than
                # max_batch_size outright ("Size of item is greater than max_batch_size"),
                # where topicproj runs it as a batch of its own: give it room for one request.
                i = self.command.index("--max-batch-items") + 1
                self.command[i] = str(max(int(self.command[i]), request_items))
        elif config.noop:
            self.command = [
                sys.executable,
                "-m",
                "benchmarks.noop_server",
                "--port",
                str(self.port),
            ]
        else:
            self.command = [
                sys.executable,
                "-m",
                cli,
                "serve",
                "--model",
                str(model),
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--no-metrics",
                # no drain between rows: nothing balances load away from this server
                *(("--drain-seconds", "0") if config.tree is None else ()),
                *config.flags,
                *(
                    ("--model-root", str(log_dir / f"registry-{tag}"), "--data-root", str(log_dir))
                    if config.train
                    else ()
                ),
                *(("--device", device) if device else ()),
            ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def launch(self) -> None:
        # TOPICPROJ_* variables from the caller's shell would silently change the configuration
        # being measured; the flags above are the whole configuration.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOPICPROJ_")}
        env["PYTHONUNBUFFERED"] = "1"  # a crash leaves its traceback in the log
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def wait_serving(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        request = health_pb2.HealthCheckRequest(service="")
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise ServerCrashed(
                        f"server exited with status {self.proc.returncode} before SERVING\n"
                        + self.log_tail()
                    )
                if time.monotonic() > deadline:
                    raise ServerCrashed(
                        f"server not SERVING after {timeout:.0f} s\n" + self.log_tail()
                    )
                if self.ready_line is not None:
                    log = self.log_path.read_text(errors="replace").splitlines()
                    if self.ready_line in log:
                        return
                else:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        reply = await stub.Check(request, timeout=1.0)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                await asyncio.sleep(0.2)

    def cpu_seconds(self) -> float | None:
        """CPU of the server and its child processes (the workers of `--workers N`)."""
        if self.proc is None:
            return None
        return tree_cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful stop), then SIGKILL if it has not exited within `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(
                    f"server {self.address} ignored SIGTERM for {timeout:.0f} s; killing it",
                    file=sys.stderr,
                )
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def log_problems(self) -> list[str]:
        """Lines of the server log that report an error (tracebacks, ERROR records)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in text if " ERROR " in ln or ln.startswith("Traceback")]


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.launch()
    try:
        yield server
    finally:
        server.stop()  # also on Ctrl-C or a crash of this process: no orphan servers


async def model_description(address: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        get_model = channel.unary_unary(
            f"/{SERVICE}/GetModel",
            request_serializer=pb.GetModelRequest.SerializeToString,
            response_deserializer=pb.GetModelResponse.FromString,
        )
        info = (await get_model(pb.GetModelRequest(top_keywords=1), timeout=10.0)).model
    return (
        f"version {info.version}, {info.topic_count} topics, {info.vocabulary_size} keywords, "
        f"{info.activation}, on {info.device}"
    )


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The project at `revision`, in a temporary git worktree removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="topicproj-before-"))
    tree = tmp / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)
