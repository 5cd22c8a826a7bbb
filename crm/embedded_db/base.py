"""PostgreSQL backend for the embedded server: Django's own backend, plus a server that is
started (or found running) before the first connection of this process."""

from pathlib import Path

from django.db.backends.postgresql import base

from . import server


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        endpoint = server.ensure_running(Path(self.settings_dict["EMBEDDED_ROOT"]))
        # Later readers of the settings (the test worker's DATABASE_URL, dbshell) see the socket.
        self.settings_dict["HOST"] = str(endpoint.socket_dir)
        self.settings_dict["PORT"] = str(endpoint.port)
        return super().get_connection_params()
