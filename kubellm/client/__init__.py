"""The clientset, listers and informers: the only way controllers reach API data (over HTTP)."""
