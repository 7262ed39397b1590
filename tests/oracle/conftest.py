import sys
from pathlib import Path

# The oracle modules import each other by plain name, whatever directory pytest starts in.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "full: full-size models (RN50, ViT-B/16); deselect with -m 'not full'")
