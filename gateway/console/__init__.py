"""The security officer's console: read-only pages under ``/console/`` (issue 15).

The gateway serves static HTML shells and ES modules from this package; the pages fetch
entries, checkpoints and proofs from the ``/v1/audit/*`` API and the browser verifies them
itself (``static/verify/``), against a key the officer pinned in the browser. Nothing here
renders audit data on the server, so nothing an attacker writes into an entry reaches HTML
except through the DOM's ``textContent``.
"""
