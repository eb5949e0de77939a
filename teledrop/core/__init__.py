"""teledrop's domain: drops, the upload pipeline, slug rules and errors.

Nothing in this package imports Flask or werkzeug: every operation is a plain function
that any host (the WSGI app today, another runtime tomorrow) can call.
"""
