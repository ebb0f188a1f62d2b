"""Load from tritonclient.grpc.aio, run by the tritonclient environment's own Python.

It imports nothing of topicproj (that environment's protobuf is older than the project's): it
reads each request's items from a JSON file, sends them as ModelInfer calls the way a team on
Triton's tools would (numpy arrays, `set_data_from_numpy`), and prints the latencies of the
calls that completed inside the measured window, the errors, and its own CPU time, as JSON.

    python tritonclient_load.py ADDRESS ITEMS.json CLIENTS ITEMS_PER_REQUEST WARMUP DURATION TIMEOUT
"""

import asyncio
import collections
import json
import sys
import time

import numpy as np
import tritonclient.grpc.aio as tc
from tritonclient.utils import InferenceServerException


def inputs(items):  # type: ignore[no-untyped-def]
    flat = [k.encode() for item in items for k in item]
    keywords = tc.InferInput("keywords", [len(flat)], "BYTES")
    keywords.set_data_from_numpy(np.array(flat, dtype=np.object_))
    counts = tc.InferInput("keyword_counts", [len(items)], "INT32")
    counts.set_data_from_numpy(np.array([len(item) for item in items], dtype=np.int32))
    return [keywords, counts]


async def main() -> None:
    address, path, clients, per_request, warmup, duration, timeout = sys.argv[1:8]
    with open(path, encoding="utf-8") as f:
        requests = json.load(f)
    clients, per_request = int(clients), int(per_request)
    warmup, duration, timeout = float(warmup), float(duration), float(timeout)
    client = tc.InferenceServerClient(url=address)
    latencies, errors = [], collections.Counter()
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration
    cpu = [0.0, 0.0]

    async def one(slot: int) -> None:
        k = slot
        while (t0 := time.monotonic()) < stop_at:
            items = requests[k % len(requests)]
            k += clients
            try:
                result = await client.infer("topicproj", inputs(items), client_timeout=timeout)
            except InferenceServerException as e:
                errors[str(e.status())] += 1
                await asyncio.sleep(0.01)
                continue
            t1 = time.monotonic()
            if result.as_numpy("topics").shape[0] != per_request:
                errors["WRONG_ROWS"] += 1
            elif measure_from <= t1 < stop_at:
                latencies.append(t1 - t0)

    async def clock() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu[0] = time.process_time()
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        cpu[1] = time.process_time()

    await asyncio.gather(clock(), *(one(i) for i in range(clients)))
    await client.close()
    print(json.dumps({"latencies": latencies, "errors": errors, "cpu": cpu[1] - cpu[0]}))


asyncio.run(main())
