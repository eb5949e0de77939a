"""teledrop's domain: drops, the upload pipeline, slug rules and errors.

Nothing in this package imports Flask, werkzeug, pluggy or the rest of teledrop above it
(plugins, the composition root, hosts): every operation is a plain function that any host
(the WSGI app today, another runtime tomorrow) can call, on the :class:`~.service.Teledrop`
the composition root built (``tests/test_layers.py`` holds it to that).
"""
