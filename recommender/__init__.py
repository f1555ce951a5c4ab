"""The recommendation service: a grpc.aio server over an in-memory index of its own store."""
