"""The embedded PostgreSQL server used when DATABASE_URL is unset.

`settings.py` names this package as the database ENGINE; Django then loads `base.py`, a
PostgreSQL backend that makes sure the server runs before its first connection. Nothing starts
at import time: a command that never touches the database (collectstatic, ruff, a settings
import) never starts a server. The server itself is managed in `server.py`.
"""
