"""Live mode: the ``live`` command and the RBAC it needs; the cluster itself is read by ``sources.cluster``.

Importing this package never imports ``kubernetes``; only ``sources.cluster.collect`` does.
"""
