"""Kubernetes-style validation: field paths and errors, names, labels, object metadata."""
