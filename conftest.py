# The harness's pytest plugin is registered through the `pytest11` entry
# point (see pyproject.toml); naming it here also enables it when the
# package is used from a plain checkout.
pytest_plugins = ["harness.pytest_plugin"]
