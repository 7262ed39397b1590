import sys
from pathlib import Path

import pytest

# The oracle modules import each other by plain name, whatever directory pytest starts in.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "full: full-size models (RN50, ViT-B/16); deselect with -m 'not full'")


# Imported inside the fixtures: other oracle tests here need neither torch nor the CLIP peers.
@pytest.fixture(scope="session")
def bench() -> Path:
    import clip_harness
    return clip_harness.find_bench()


@pytest.fixture(scope="session")
def pixel_files(tmp_path_factory):
    import clip_harness
    d = tmp_path_factory.mktemp("pixels")
    return lambda name: clip_harness.pixel_file(d, name)
