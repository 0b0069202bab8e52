"""A tiny app for the python-app example: fetch nothing, just show that requests is importable."""

import requests

print(f"hello from requests {requests.__version__}")
