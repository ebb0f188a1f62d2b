"""The servers a team would pick instead of topicproj, serving the same model for the load
benchmark (`python -m benchmarks peers`): Ray Serve with `@serve.batch` behind its gRPC
ingress, and a plain grpc.aio server without batching."""
