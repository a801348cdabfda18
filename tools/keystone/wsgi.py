"""Keystone's public WSGI application for gunicorn (Keystone 30 ships no
``keystone-wsgi-public`` script).

oslo.config inside Keystone parses ``sys.argv``; under gunicorn that is
gunicorn's own command line, which it rejects (every worker would exit with
status 2 and be respawned forever). So the arguments are dropped before
Keystone is imported. The configuration file comes from
``OS_KEYSTONE_CONFIG_FILES``, set by ``keystone.sh``.
"""

import sys

del sys.argv[1:]

from keystone.server import wsgi  # noqa: E402

application = wsgi.initialize_public_application()
