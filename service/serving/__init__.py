"""Online serving: the gRPC server and servicer, the model holder, batching, validation,
interceptors and worker processes."""
