"""tbyte-policy: a policy-as-code production-readiness scanner for Kubernetes."""

__version__ = "0.1.0"
