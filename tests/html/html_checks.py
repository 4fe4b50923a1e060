"""Assertions shared by the HTML tests."""

import re


def assert_self_contained(html: str) -> None:
    """No script, no stylesheet or image fetched from anywhere: every image is a data URI."""
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=(?!["']?data:)""", html), "a resource outside the page"
    assert "http://" not in html and "https://" not in html
