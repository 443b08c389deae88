"""How a CDN URL is named in logs, events and refusals: where it points (scheme, host, port, path), never a user,
a signature or another parameter."""

from __future__ import annotations

import pytest

from filmroll.platform.cdn import describe


@pytest.mark.parametrize(("url", "shown"), [
    ("https://scontent.cdninstagram.com/v/x.jpg?oe=6A&oh=secret", "https://scontent.cdninstagram.com/v/x.jpg"),
    ("https://scontent.cdninstagram.com:8443/x.jpg?oh=secret", "https://scontent.cdninstagram.com:8443/x.jpg"),
    ("https://user:pw@cdn.example/a.jpg", "https://cdn.example/a.jpg"),
    ("http://[::1]:8700/cdn/x.jpg", "http://[::1]:8700/cdn/x.jpg"),
    ("https://cdn.example:99999/x.jpg", "https://cdn.example:?/x.jpg"),
])
def test_a_refused_url_is_named_with_its_port_and_without_its_secrets(url, shown):
    assert describe(url) == shown
