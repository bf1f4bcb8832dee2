"""opskit: the operator's companion for a Prometheus, Alertmanager, Elasticsearch, Grafana stack."""

__version__ = "0.1.0"
