# The harness's pytest plugins are registered through `pytest11` entry
# points (see pyproject.toml); naming them here also enables them when the
# package is used from a plain checkout.
pytest_plugins = ["harness.pytest_plugin", "harness.scenario.collect"]
