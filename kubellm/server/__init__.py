"""HTTP layer: filters, generic handlers, discovery, OpenAPI. Imports registry and service, never etcd."""
