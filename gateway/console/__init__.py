"""The security officer's console: read-only pages under ``/console/`` (issue 15).

The gateway serves static HTML shells and ES modules from this package; the pages fetch
entries, checkpoints and proofs from the ``/v1/audit/*`` API and the browser verifies them
itself (``static/verify/``, ``static/handover.js``), against a key the officer pinned in the
browser. The pages render audit data only through the DOM's ``textContent``; the one thing
drawn from it on the server is the overview's charts (``charts.py``): SVG images, their
labels XML-escaped text, shown as ``<img>`` (no script runs in an image).
"""
