"""Python clients of the topicproj gRPC API: blocking and asyncio."""

from .topic_client import (
    AsyncTopicClient,
    Projections,
    TopicClient,
    check_health,
)

__all__ = ["AsyncTopicClient", "Projections", "TopicClient", "check_health"]
