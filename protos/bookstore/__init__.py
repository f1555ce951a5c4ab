"""The bookstore's contracts: Python generated from the .proto files beside it."""
