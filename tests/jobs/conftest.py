"""Fixtures of the dataset-job tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from job_images import write_images


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder of 10 tiny images."""
    write_images(tmp_path / "images", 10)
    return tmp_path / "images"
