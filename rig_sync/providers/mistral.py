"""mistral: an OpenAI-compatible provider; its settings are a row of `rig_sync.providers._compat.ROWS`."""

from ._compat import client_class

Client = client_class("mistral", __name__)
ClientBuilder = Client.Builder
