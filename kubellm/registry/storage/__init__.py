"""The storage layer: a small interface (`interface`) and its etcd backend (`etcd`)."""
