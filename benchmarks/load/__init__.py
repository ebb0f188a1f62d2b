"""Load generator for the projection service: batched against unbatched serving, in one run.

For every scenario (clients x items per request) and every server configuration (dynamic batching
as configured, and batching off with `max_batch_items=1`) it starts a fresh `topicproj serve`
process on a free port of 127.0.0.1, waits until the gRPC health check says SERVING, drives it
with N asyncio clients sending `Project` calls back to back for a warm-up and then a measured
window, and stops it with SIGTERM. The server runs in its own process so that the load
generator's event loop and GIL do not throttle it; on a machine with few cores the two still
compete for CPU, so the table also shows the CPU each side used.

    python -m benchmarks load                       # 64 x 1 and 16 x 256, ~1.5 min
    python -m benchmarks load --clients 128 --items-per-request 8 --duration 20
    python -m benchmarks load --out benchmarks/RESULTS.md
"""
