"""Image references split the way the container runtime and the API server's defaulting read them."""

from __future__ import annotations

import pytest

from tbyte_policy.checks.images import ImageRef, parse_image

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("reference", "expected"), [
    ("nginx", ImageRef("nginx", None, None)),
    ("nginx:1.27.3", ImageRef("nginx", "1.27.3", None)),
    ("library/nginx:latest", ImageRef("library/nginx", "latest", None)),
    ("localhost:5000/app", ImageRef("localhost:5000/app", None, None)),
    ("localhost:5000/team/app:2.1", ImageRef("localhost:5000/team/app", "2.1", None)),
    (f"ghcr.io/acme/app@{DIGEST}", ImageRef("ghcr.io/acme/app", None, DIGEST)),
    (f"registry:5000/app:1.0@{DIGEST}", ImageRef("registry:5000/app", "1.0", DIGEST)),
    ("nginx:", ImageRef("nginx", None, None)),
])
def test_parse_image(reference, expected):
    assert parse_image(reference) == expected


@pytest.mark.parametrize(("reference", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("localhost:5000/app", "Always"),
    ("nginx:1.27.3", "IfNotPresent"),
    (f"nginx@{DIGEST}", "IfNotPresent"),
    (f"nginx:latest@{DIGEST}", "IfNotPresent"),
])
def test_default_pull_policy_follows_the_api_server(reference, policy):
    assert parse_image(reference).default_pull_policy == policy
