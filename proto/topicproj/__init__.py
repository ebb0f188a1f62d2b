"""topicproj: latent topics of keyword catalogs, served over gRPC.

The one import name of the distribution. Its parts come from the repository's folders:

- ``topicproj.v1``, ``topicproj.oip.v2``: the generated gRPC code (``proto/``);
- ``topicproj.service``: serving, jobs, the client and the command line (``service/``);
- ``topicproj.models``: the maths and its data (``models/``).

The client is exported here, and imported on first use, so that ``import topicproj.v1`` or
``import topicproj.models`` pays for nothing else::

    from topicproj import TopicClient

    with TopicClient("localhost:50051") as client:
        client.project([["alien", "space"]], top_k=3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topicproj.service.client import (
        AsyncTopicClient,
        Projections,
        TopicClient,
        check_health,
    )

__all__ = ["AsyncTopicClient", "Projections", "TopicClient", "check_health"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from topicproj.service import client

        return getattr(client, name)
    raise AttributeError(f"module 'topicproj' has no attribute {name!r}")
